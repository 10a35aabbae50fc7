"""Build something once per pytest run, shared by every xdist worker.

    export_base = built_once(tmp_path_factory, "serving_exports", build)

Every worker has its own base temporary directory under one directory of
the run; the build goes there, guarded by an exclusive `flock`, so the
first worker builds while the others wait, then all read the same copy.
"""

import fcntl
import os
import pathlib
import shutil
import tempfile


def shared_root(tmp_path_factory):
    """The run's temporary directory, the same for every xdist worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name, build):
    """Returns the path of a directory `name` that `build(path)` fills, built once per
    pytest run and shared by every xdist worker (an fcntl lock on a file beside it; the
    directory is written under a temporary name and renamed when complete).

    The lock file is `<name>.lock`. A build that raises leaves nothing under `name`
    (its partial directory is removed), so the next call builds again."""
    root = pathlib.Path(shared_root(tmp_path_factory))
    target = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not target.is_dir():
            partial = tempfile.mkdtemp(prefix=f".{name}-", dir=root)
            try:
                build(partial)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            os.rename(partial, target)  # atomic: others see all of it or nothing
    return target
