"""benchmarks/suite_profile.py: the per-test CPU lines a profiled pytest
run writes, and their sums per file."""

import json
import os
import subprocess
import sys

from benchmarks import suite_profile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The test a profiled run times: a subprocess that spins 0.4 s of CPU.
SPINNING_TEST = '''
import subprocess, sys

SPIN = "import time\\nstart = time.process_time()\\nwhile time.process_time() - start < 0.4: pass"

def test_spins_in_a_subprocess():
    subprocess.run([sys.executable, "-c", SPIN], check=True)

def test_does_nothing():
    pass
'''


def test_rows_sum_per_file_most_cpu_first():
    rows = [
        {"test": "tests/a.py::x", "wall": 1.0, "process": 2.0, "subprocesses": 0.0},
        {"test": "tests/b.py::y", "wall": 3.0, "process": 1.0, "subprocesses": 4.0},
        {"test": "tests/a.py::z[1]", "wall": 0.5, "process": 0.5, "subprocesses": 0.25},
    ]
    assert suite_profile.per_file(rows) == [
        ("tests/b.py", 1, 3.0, 1.0, 4.0), ("tests/a.py", 2, 1.5, 2.5, 0.25)]


def test_a_profiled_run_counts_its_subprocesses_cpu(tmp_path, capsys):
    (tmp_path / "test_spin.py").write_text(SPINNING_TEST)
    profile = tmp_path / "profile.jsonl"
    env = dict(os.environ, PYTHONPATH=REPO, SUITE_PROFILE=str(profile))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p",
                           "no:cacheprovider", "-p", "benchmarks.suite_profile", "test_spin.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {row["test"]: row for row in map(json.loads, profile.read_text().splitlines())}
    assert sorted(rows) == ["test_spin.py::test_does_nothing",
                            "test_spin.py::test_spins_in_a_subprocess"]
    assert rows["test_spin.py::test_spins_in_a_subprocess"]["subprocesses"] >= 0.4
    assert rows["test_spin.py::test_does_nothing"]["subprocesses"] == 0
    assert rows["test_spin.py::test_spins_in_a_subprocess"]["wall"] >= 0.4

    suite_profile.main([str(profile)])
    out = capsys.readouterr().out
    assert "| test_spin.py | 2     |" in out
    assert out.rstrip().splitlines()[-1].startswith("2 tests in 1 files: ")
