"""Starts the REST server in a subprocess on a free loopback port, and
talks to it over real HTTP (the standard library's client)."""

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from loopback import free_port

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Client:
    """`get(path)` / `post(path, body)` -> `(status, JSON answer)`."""

    def __init__(self, port):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method, path, body=None, timeout=120, raw=False):
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        return status, (payload if raw else json.loads(payload))

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body, **kwargs):
        return self.request("POST", path, body, **kwargs)


@contextlib.contextmanager
def running_server(*args, startup_seconds=180, log_path=None, log_level="warning",
                   environment=None):
    """Runs `python -m keras_attention.serving *args --rest_api_port P`
    until the block ends (SIGTERM, then SIGKILL after 30 s); yields
    `(client, process)` once the metrics endpoint answers. Its stdout and
    stderr go to `log_path` when given; `environment` adds variables."""
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO_ROOT, **(environment or {}))
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_attention.serving", *args, "--rest_api_port", str(port),
         "--log_level", log_level], cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    client = Client(port)
    try:
        # Ready means the endpoint answers: poll it (bounded) while the process lives.
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} at start-up")
            try:
                client.get("/monitoring/prometheus/metrics", timeout=5, raw=True)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)
        yield client, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log_path:
            log.close()


def imported_packages(stderr):
    """The top-level packages a process imported modules of, from what it
    printed to stderr under `PYTHONPROFILEIMPORTTIME=1` (lines `import time:
    self | cumulative | name`; a package imported on the way to its
    submodule may have no line of its own)."""
    return {line.split("|")[-1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}
