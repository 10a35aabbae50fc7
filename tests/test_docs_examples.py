"""Every `python` and `bash` block of the README and of `docs/` runs.

Pages run in the order a reader meets them (the README, then the site's
navigation) in one working directory, so a page can use what an earlier
one trained (`runs/nmt`, ...). The Python blocks of a page share one
namespace, in one interpreter for the whole module (`docs_kernel.py`); each
bash block runs in a fresh `bash -euo pipefail`, its background jobs ended
when its page ends. An HTML comment before a block says how it runs:

    <!-- docs-test: run -->             as written (also the default)
    <!-- docs-test: tiny -->            `python -m training.TASK` commands get `--preset tiny`
    <!-- docs-test: skip CATEGORY: why -->  not run; CATEGORY is one of
                                        docs_blocks.SKIP_CATEGORIES
"""

import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path
import pytest
from docs_blocks import (REPO, RUN_LANGUAGES, SNIPPET, doc_pages,
                         expand_snippets, page_blocks, parse_blocks, with_tiny_preset)

BLOCK_TIMEOUT = 900  # seconds; a tiny training run takes about one minute


# ------------------------------------------------------------------ runners
class PythonKernel:
    """One interpreter running the Python blocks (`docs_kernel.py`)."""

    def __init__(self, workdir, env):
        self.log = open(workdir / "kernel.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("docs_kernel.py"))],
            cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True)

    def run(self, block):
        request = {"page": block.page, "label": block.label, "code": block.code}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], BLOCK_TIMEOUT)
        if not ready:
            raise AssertionError(f"{block.label}: no answer in {BLOCK_TIMEOUT} s")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"{block.label}: the Python process died; "
                                 f"its log: {self.log.name}")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


class ShellRunner:
    """Runs bash blocks; ends their background jobs when a page ends."""

    def __init__(self, workdir, env):
        self.workdir, self.env, self.groups = workdir, env, []

    def run(self, block, code):
        log_path = self.workdir / f"block-{Path(block.page).stem}-{block.line}.log"
        with open(log_path, "w") as log:
            # Its own session: background jobs (a server) outlive bash and are
            # ended with the page; output to a file, as they keep it open.
            process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", code],
                                       cwd=self.workdir, env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            self.groups.append(process.pid)
            try:
                status = process.wait(timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                status = None
        return status, log_path.read_text()

    def end_page(self):
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.groups = []


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("docs")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTEST_", "KERAS_DISTRIBUTION_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # As in the JAX tests: XLA's CPU optimizer is most of a few-step run.
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    kernel = PythonKernel(workdir, env)
    yield kernel, ShellRunner(workdir, env)
    kernel.close()


def _has_blocks_to_run(page):
    try:
        return any(block.language in RUN_LANGUAGES and not block.directive.startswith("skip")
                   for block in page_blocks(page))
    except ValueError:
        return True  # its test reports the error


PAGES_THAT_RUN = [page for page in doc_pages() if _has_blocks_to_run(page)]


@pytest.mark.parametrize("page", PAGES_THAT_RUN)
def test_page_examples_run(page, runners):
    kernel, shell = runners
    try:
        for block in page_blocks(page):
            if block.language not in RUN_LANGUAGES or block.directive.startswith("skip"):
                continue
            if block.language == "python":
                answer = kernel.run(block)
                assert answer["ok"], f"{block.label} failed:\n{answer['error']}"
                continue
            code = expand_snippets(block.code)
            if block.directive == "tiny":
                code = with_tiny_preset(code)
            status, output = shell.run(block, code)
            assert status == 0, f"{block.label} exited {status}:\n{output[-4000:]}"
            # A curl that got an error answer still exits 0.
            assert '{"error"' not in output, f"{block.label} got an error answer:\n{output}"
    finally:
        shell.end_page()


# ------------------------------------------------------------ the rules
def test_a_skipped_block_is_what_its_category_says():
    """A skip cannot hide an example: an install block installs, a hosts
    block names machines other than this one, a cluster block is a file of
    deploy/ (which its own tests check), a loopback block is run by the
    test that reads it (`docs_blocks.loopback_command`)."""
    pages = doc_pages()
    assert pages[0] == "README.md" and "docs/quickstart.md" in pages
    skipped = [block for page in pages for block in page_blocks(page)
               if block.directive.startswith("skip")]
    assert skipped
    for block in skipped:
        category = block.directive.split()[1].rstrip(":")
        if category == "install":
            assert "pip install" in block.code, block.label
        elif category == "hosts":
            addresses = re.findall(r"JOB_ADDRESSES=([\w.]+):", block.code)
            assert addresses and "127.0.0.1" not in addresses, block.label
        elif category == "loopback":
            assert "JOB_ADDRESSES=127.0.0.1:" in block.code, block.label
            assert "python -m training." in block.code, block.label
        else:
            assert category == "cluster", block.label
            included = SNIPPET.findall(block.code)
            assert included and block.code.strip() == f'--8<-- "{included[0]}"', block.label
            assert included[0].startswith("deploy/"), block.label


@pytest.mark.parametrize("text, problem", [
    ("```\nx = 1\n```\n", "needs a language"),
    ("```sh\nls\n```\n", "neither run"),
    ("<!-- docs-test: skip lazy: no time -->\n```bash\nls\n```\n", "unknown directive"),
    ("<!-- docs-test: tiny -->\n```bash\nls\n```\n", "no `python -m training.TASK`"),
    ("<!-- docs-test: tiny -->\n```bash\npython -m training.video --preset main\n```\n",
     "names its own"),
    ("<!-- docs-test: run -->\n```json\n{}\n```\n", "never runs"),
    ("```python\nx = 1\n", "never closed"),
])
def test_bad_blocks_are_refused_with_page_and_line(text, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as error:
        parse_blocks("docs/page.md", "intro\n\n" + text)
    assert str(error.value).startswith("docs/page.md:")


def test_blocks_are_found_with_their_directives_and_the_tiny_preset_is_added():
    text = ("# t\n<!-- docs-test: tiny -->\n```bash\npython -m training.video --workdir w &\n"
            "```\n\n```text\nout\n```\n```python\nprint(1)\n```\n")
    tiny, shown, python = parse_blocks("p.md", text)
    assert (tiny.line, tiny.directive, tiny.language) == (3, "tiny", "bash")
    assert with_tiny_preset(tiny.code) == "python -m training.video --preset tiny --workdir w &\n"
    assert (shown.language, python.directive, python.code) == ("text", "run", "print(1)\n")


def test_the_readme_test_command_is_what_ci_runs():
    ci_steps = [line.replace(" --quiet", "") for line in
                (REPO / ".ci" / "run").read_text().splitlines()
                if line.startswith(("python3 ", ".venv/"))]
    readme = [block for block in page_blocks("README.md") if "pytest" in block.code]
    assert len(readme) == 1
    command = re.sub(r"\\\n\s*", "", readme[0].code).strip()
    assert [step.strip() for step in command.split("&&")] == ci_steps
