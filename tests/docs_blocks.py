"""The fenced code blocks of the README and of `docs/`, with the
`docs-test` directive before each (`test_docs_examples.py` runs them; a
test that runs a documented command itself reads it from here)."""

import re
from pathlib import Path
from typing import NamedTuple

import yaml

REPO = Path(__file__).resolve().parent.parent
RUN_LANGUAGES = ("python", "bash")
# Languages a block may have without being run: outputs, files, formats.
SHOWN_LANGUAGES = ("text", "json", "yaml", "toml", "ini")
# Why a block may be left out, and what covers it instead.
SKIP_CATEGORIES = {
    "install": "installing is what .ci/run and tests/test_packaging.py do",
    "hosts": "commands for other machines; a loopback block runs the same command",
    "cluster": "needs a scheduler; tests/test_deploy_clusters.py checks the files",
    "loopback": "a cluster on this machine; tests/training/test_jax_training.py runs the "
                "block's command itself, shortened, and compares the weights with one process",
}
FENCE = re.compile(r"^```(\S*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
TRAINING_COMMAND = re.compile(r"(python -m training\.\w+)")
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.MULTILINE)


class Block(NamedTuple):
    page: str
    line: int  # 1-based line of the opening fence
    language: str
    directive: str  # "run", "tiny" or "skip CATEGORY: why"
    code: str

    @property
    def label(self):
        return f"{self.page}:{self.line}"


def doc_pages():
    """The README, then every page of mkdocs.yml's navigation, in order."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def walk(entries):
        for entry in entries:
            value = entry if isinstance(entry, str) else next(iter(entry.values()))
            if isinstance(value, list):
                yield from walk(value)
            else:
                yield f"docs/{value}"

    return ["README.md", *walk(config["nav"])]


def parse_blocks(page, text):
    """The fenced blocks of a Markdown page, with the directive before each.

    Raises ValueError naming the page and line for a fence without a
    language, a language that is neither run nor shown, or a bad directive.
    """
    blocks, lines, index = [], text.split("\n"), 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        language, start = match.group(1), index
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{page}:{start + 1}: a code block is never closed")
        where = f"{page}:{start + 1}"
        if not language:
            raise ValueError(f"{where}: a code block needs a language "
                             f"({', '.join(RUN_LANGUAGES + SHOWN_LANGUAGES)})")
        if language not in RUN_LANGUAGES + SHOWN_LANGUAGES:
            raise ValueError(f"{where}: language {language!r} is neither run "
                             f"({', '.join(RUN_LANGUAGES)}) nor shown "
                             f"({', '.join(SHOWN_LANGUAGES)})")
        directive = "run"
        previous = DIRECTIVE.match(lines[start - 1].strip()) if start else None
        if previous:
            directive = previous.group(1)
            if language not in RUN_LANGUAGES:
                raise ValueError(f"{where}: a docs-test directive on a {language} block, "
                                 f"which never runs")
            _check_directive(where, directive, "\n".join(lines[start + 1:end]))
        blocks.append(Block(page, start + 1, language, directive,
                            "\n".join(lines[start + 1:end]) + "\n"))
        index = end + 1
    return blocks


def _check_directive(where, directive, code):
    if directive == "run":
        return
    if directive == "tiny":
        if not TRAINING_COMMAND.search(code):
            raise ValueError(f"{where}: 'tiny' on a block with no `python -m training.TASK`")
        if "--preset" in code:
            raise ValueError(f"{where}: 'tiny' sets the preset; the block names its own")
        return
    match = re.fullmatch(r"skip (\w+): (.+)", directive)
    if not match or match.group(1) not in SKIP_CATEGORIES:
        raise ValueError(f"{where}: unknown directive {directive!r}; use run, tiny or "
                         f"skip CATEGORY: why, CATEGORY one of {', '.join(SKIP_CATEGORIES)}")


def with_tiny_preset(code):
    """`python -m training.translation --workdir W` -> `... --preset tiny --workdir W`."""
    return TRAINING_COMMAND.sub(r"\1 --preset tiny", code)


def expand_snippets(code):
    return SNIPPET.sub(lambda match: (REPO / match.group(1)).read_text().rstrip("\n"), code)


def page_blocks(page):
    return parse_blocks(page, (REPO / page).read_text())


def loopback_command(page):
    """`(variables, argv)` of the one `skip loopback` block of `page`: the
    names of the environment variables it sets on its training command, and
    that command (`python -m training.TASK ...`) as an argument list."""
    import shlex

    blocks = [block for block in page_blocks(page) if block.directive.startswith("skip loopback")]
    assert len(blocks) == 1, f"{page}: {len(blocks)} loopback blocks, not one"
    code = re.sub(r"\\\n\s*", " ", blocks[0].code)
    line = next(line for line in code.splitlines() if TRAINING_COMMAND.search(line))
    words = shlex.split(line.split("&")[0])
    start = words.index("python")
    variables = [word.split("=", 1)[0] for word in words[:start] if "=" in word]
    return variables, words[start:]
