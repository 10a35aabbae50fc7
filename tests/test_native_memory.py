"""`native_memory`: freed blocks are kept for the next allocation, so a loop
that allocates and frees as a training step does stops faulting pages in.

Each case runs in a fresh interpreter (glibc's defaults; this suite's own
processes already keep freed memory) and counts the minor page faults of
rounds that allocate forty 4 MiB buffers, write them and free them."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from keras_attention import native_memory

ROUNDS = textwrap.dedent("""
    import contextlib, io, json, resource, sys
    import numpy as np
    from keras_attention import native_memory

    took = None
    if sys.argv[1] == "call":
        took = native_memory.retain_freed_memory()
    elif sys.argv[1] != "none":  # an entry point's statement, its output and exit put aside
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            exec(sys.argv[1])

    def one_round():
        blocks = [np.ones(512 * 1024) for _ in range(40)]  # 40 x 4 MiB, written
        del blocks

    one_round()  # glibc's thresholds adapt to the first round
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        one_round()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(json.dumps({"took": took, "faults": faults}))
""")
PAGES_PER_ROUND = 40 * 4 * 1024 * 1024 // 4096
# The entry points, each run as far as a quick exit (no model, no data).
ENTRY_POINTS = {
    "keras-attention": "from keras_attention import cli; cli.main(['translate', '--help'])",
    "python -m training.TASK": "from training.core import cli; "
                               "from training.translation.__main__ import TASK; "
                               "cli.main(TASK, ['--list-options'])",
}


def rounds(mode, environment=None):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MALLOC_") and key != native_memory.OPT_OUT_VARIABLE}
    env.update(environment or {})
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], env=env, capture_output=True,
                          text=True, timeout=120, check=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(done.stdout.splitlines()[-1])


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="glibc's malloc only")


@pytest.fixture(scope="module")
def default():
    """The rounds under glibc's defaults, which hand the freed top of the heap
    back each round: half of every round's 160 MiB faults in again (20,500
    pages a round measured)."""
    default = rounds("none")
    assert default["faults"] >= 5 * PAGES_PER_ROUND * 0.4, default
    return default


def test_freed_memory_is_reused_instead_of_faulted_in_again(default):
    called = rounds("call")
    from_environment = rounds("none", native_memory.MALLOC_ENVIRONMENT)
    opted_out = rounds("call", {native_memory.OPT_OUT_VARIABLE: "1"})
    assert called["took"] is True
    # Kept: the later rounds reuse the first round's pages (none faulted).
    assert called["faults"] < 0.01 * default["faults"], (called, default)
    assert from_environment["faults"] < 0.01 * default["faults"], (from_environment, default)
    # KERAS_ATTENTION_MALLOC_DEFAULTS=1: the call leaves glibc's defaults.
    assert opted_out["took"] is False
    assert abs(opted_out["faults"] - default["faults"]) <= 0.05 * default["faults"], opted_out


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_the_commands_keep_freed_memory_from_their_start(entry, default):
    after_entry = rounds(ENTRY_POINTS[entry])
    assert after_entry["faults"] < 0.01 * default["faults"], (entry, after_entry, default)
