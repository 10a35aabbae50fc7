"""Where the test suite's time goes: CPU seconds per test file.

    python -m pytest -p benchmarks.suite_profile          # writes suite-profile.jsonl
    python -m benchmarks.suite_profile suite-profile.jsonl --top 25

As a pytest plugin it appends one JSON line per test to `$SUITE_PROFILE`
(default `suite-profile.jsonl`; every xdist worker appends to the same
file): the test's wall seconds, the CPU seconds of the pytest process
that ran it (its setup and teardown included, so a module fixture counts
in its first test) and those of the subprocesses it waited for. A
subprocess that a fixture outlives counts where it is reaped.

As a command it sums the lines per file, most CPU first.
"""

import argparse
import collections
import json
import os
import resource
import sys
import time

import pytest

OUTPUT_VARIABLE = "SUITE_PROFILE"


def _cpu_seconds():
    """`(this process, its reaped children)`: user + system CPU seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start, (own, children) = time.monotonic(), _cpu_seconds()
    yield
    own_after, children_after = _cpu_seconds()
    row = {"test": item.nodeid, "wall": round(time.monotonic() - start, 3),
           "process": round(own_after - own, 3), "subprocesses": round(children_after - children, 3),
           "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}
    with open(os.environ.get(OUTPUT_VARIABLE, "suite-profile.jsonl"), "a",
              encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")  # one short write: lines do not interleave


def per_file(rows):
    """`[(file, tests, wall, process, subprocesses)]`, most CPU first."""
    totals = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for row in rows:
        total = totals[row["test"].split("::", 1)[0]]
        total[0] += 1
        total[1] += row["wall"]
        total[2] += row["process"]
        total[3] += row["subprocesses"]
    return sorted(((name, *values) for name, values in totals.items()),
                  key=lambda entry: (-(entry[3] + entry[4]), entry[0]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="the JSON lines a profiled pytest run wrote")
    parser.add_argument("--top", type=int, default=25, help="files to list")
    args = parser.parse_args(argv)

    from benchmarks.common import markdown_table

    with open(args.profile, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    files = per_file(rows)
    table = [[name, str(tests), f"{wall:.0f}", f"{process:.0f}", f"{children:.0f}",
              f"{process + children:.0f}"]
             for name, tests, wall, process, children in files[: args.top]]
    print(markdown_table(["file", "tests", "wall s", "pytest process CPU s",
                          "subprocesses CPU s", "CPU s"], table))
    process = sum(entry[3] for entry in files)
    children = sum(entry[4] for entry in files)
    print(f"\n{len(rows)} tests in {len(files)} files: {process:.0f} CPU s in the pytest "
          f"processes, {children:.0f} in subprocesses, {process + children:.0f} in all")


if __name__ == "__main__":
    sys.exit(main())
