"""`shared_build.built_once`: one build per run, shared by xdist workers,
never a half-built directory."""

import fcntl
import os

import pytest

from shared_build import built_once


class Factory:
    """A stand-in `tmp_path_factory` whose worker base is `<run>/popen-gw0`."""

    def __init__(self, run):
        self.base = run / "popen-gw0"
        self.base.mkdir(parents=True)

    def getbasetemp(self):
        return self.base


@pytest.fixture
def factory(tmp_path):
    return Factory(tmp_path / "run")


def test_built_once_under_the_lock_and_reused(factory, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    lock_path = factory.base.parent / "exports.lock"
    calls = []

    def build(path):
        with open(lock_path) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another worker would wait
        calls.append(path)
        with open(os.path.join(path, "model.txt"), "w") as handle:
            handle.write("built")

    first = built_once(factory, "exports", build)
    second = built_once(factory, "exports", build)
    assert first == second == factory.base.parent / "exports"  # beside every worker's base
    assert len(calls) == 1 and calls[0] != str(first)  # built under another name
    assert (first / "model.txt").read_text() == "built"


def test_without_xdist_the_base_itself_holds_it(factory, monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert built_once(factory, "exports", lambda path: None) == factory.base / "exports"


def test_a_build_that_raised_is_not_reused(factory, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")

    def broken(path):
        with open(os.path.join(path, "half.txt"), "w") as handle:
            handle.write("half")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        built_once(factory, "exports", broken)
    root = factory.base.parent
    assert sorted(os.listdir(root)) == ["exports.lock", "popen-gw0"]  # no half-built folder

    calls = []
    result = built_once(factory, "exports", lambda path: calls.append(path))
    assert len(calls) == 1 and os.listdir(result) == []  # rebuilt from empty
