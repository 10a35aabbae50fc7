"""Keeping freed memory in the process, so that TensorFlow's step buffers
are not faulted in from the operating system again at every step.

glibc's malloc hands the free top of a heap back to the kernel once it
passes a threshold that adapts to the largest block freed so far. A
TensorFlow step allocates and frees its activations and gradients (a few
megabytes each) many times, so every step pays a page fault for each
4 KiB of them: the small video-captioning training of the tests took ten
million page faults, a third of its CPU time. `retain_freed_memory()`
fixes the thresholds as the `MALLOC_*` variables of `MALLOC_ENVIRONMENT`
would at start-up; the resident size stays about the same (the buffers are
reused, not added). `KERAS_ATTENTION_MALLOC_DEFAULTS=1` keeps glibc's
defaults (to compare, or where every freed megabyte must go back).

Example:

    >>> from keras_attention import native_memory
    >>> native_memory.retain_freed_memory()  # on Linux with glibc
    True
"""

import ctypes
import ctypes.util
import os
import sys

# mallopt(3) parameters and the environment variables that set them.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = (
    # Free space kept at the top of a heap before it is handed back: 2 GiB.
    (_M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", 2 * 1024 ** 3 - 1),
    # Extra space asked of the kernel each time a heap grows: 256 MiB.
    (_M_TOP_PAD, "MALLOC_TOP_PAD_", 256 * 1024 ** 2),
    # Blocks served from the heaps rather than mapped one by one: up to 32 MiB
    # (glibc's largest value on 64-bit machines).
    (_M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", 32 * 1024 ** 2),
)
MALLOC_ENVIRONMENT = {name: str(value) for _, name, value in _SETTINGS}
OPT_OUT_VARIABLE = "KERAS_ATTENTION_MALLOC_DEFAULTS"


def retain_freed_memory():
    """Sets glibc's malloc to keep freed memory for the next allocation.

    Call it once, early (before the first model is built). Returns True
    where glibc took every setting; False where it changes nothing: off
    glibc (macOS, Windows, musl) or under `KERAS_ATTENTION_MALLOC_DEFAULTS=1`.
    """
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT_VARIABLE) == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(parameter, value) == 1 for parameter, _, value in _SETTINGS)
