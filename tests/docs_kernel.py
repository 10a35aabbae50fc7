"""Runs the Python blocks of the docs for `test_docs_examples.py`, in one
process so that TensorFlow starts once.

Reads one JSON request a line from stdin, `{"page": ..., "code": ...}`,
runs the code in that page's namespace (the blocks of a page share one, as
a reader's session would) and answers one JSON line on stdout:
`{"ok": bool, "output": printed text, "error": traceback or null}`.
"""

import contextlib
import io
import json
import sys
import traceback


def main():
    namespaces = {}
    protocol = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        namespace = namespaces.setdefault(request["page"], {"__name__": "__main__"})
        printed = io.StringIO()
        error = None
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(request["code"], request["label"], "exec"), namespace)
        except BaseException:  # noqa: BLE001 - a block's failure is the answer, not ours
            error = traceback.format_exc()
        protocol.write(json.dumps({"ok": error is None, "output": printed.getvalue(),
                                   "error": error}) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
