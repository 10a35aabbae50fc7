"""The published package: build the sdist and the wheel, check and install them.

One build per module (`built` fixture), offline throughout:

- `python -m build --no-isolation` (setuptools comes from the test venv, not
  from the package index) on a copy of the checkout's files (`git ls-files`:
  committed and new, not ignored), so stale `build/` or `*.egg-info/`
  directories cannot leak into the artifacts and the repository is not
  written to. Without `--sdist/--wheel`, build makes the sdist and then the
  wheel from the unpacked sdist, so the wheel also proves the sdist complete.
- `twine check --strict` on both: the metadata and the README render.
- The wheel goes into a fresh venv (`pip --python ... --no-index --no-deps`);
  its dependencies come from the test venv's site-packages through a `.pth`
  path line, which adds that directory to `sys.path` without running the
  `.pth` files inside it, so the test venv's editable install of this project
  does not come along. Python runs there from a temporary cwd with no
  PYTHONPATH: what it imports is the wheel's copy.

The README rule (no relative links or images) needs no build.
"""

import email.parser
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

import keras_attention

REPO = pathlib.Path(__file__).resolve().parent.parent
DIST_NAME = "keras-attention-kit"
PACKAGES = ("keras_attention", "training")
CONSOLE_SCRIPT = "keras-attention"
# The files the code opens inside its installed packages.
PACKAGE_DATA = (
    "training/translation/data/bible.en-es.tsv.gz",  # data.bundled_corpus_path()
    "training/translation/data/README.md",  # the corpus's sources and licences
)
SDIST_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO")
# SHA-256 of the Apache License 2.0 text as apache.org publishes it
# (LICENSE-2.0.txt, byte for byte the file absl-py, jax, tensorflow-datasets ship).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def _run(command, cwd, env=None, timeout=300):
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}")
    return result


def _copy_checkout(target):
    """The checkout's files as a clean clone plus uncommitted work would have them."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                  cwd=REPO).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # tracked files deleted in the work tree are listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _clean_env():
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PYTHON") and key != "VIRTUAL_ENV"}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _metadata(text):
    return email.parser.Parser().parsestr(text)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("packaging")
    source, dist = root / "source", root / "dist"
    source.mkdir()
    _copy_checkout(source)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source], cwd=root)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    return {"root": root, "source": source, "wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def wheel_files(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


def _dist_info(wheel_files):
    (dist_info,) = {name.split("/")[0] for name in wheel_files if ".dist-info/" in name}
    return dist_info


def test_twine_check_strict(built):
    _run([sys.executable, "-m", "twine", "check", "--strict", built["wheel"], built["sdist"]],
         cwd=built["root"])


def test_license_file_is_the_apache_2_text():
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256, (
        "LICENSE is not the verbatim Apache License 2.0 text")


def test_wheel_metadata(wheel_files):
    dist_info = _dist_info(wheel_files)
    metadata = _metadata(wheel_files[f"{dist_info}/METADATA"].decode("utf-8"))
    assert metadata["Name"] == DIST_NAME
    assert metadata["Version"] == keras_attention.__version__
    assert dist_info == f"{DIST_NAME.replace('-', '_')}-{keras_attention.__version__}.dist-info"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert wheel_files[f"{dist_info}/licenses/LICENSE"] == (REPO / "LICENSE").read_bytes()
    entry_points = wheel_files[f"{dist_info}/entry_points.txt"].decode("utf-8")
    assert f"{CONSOLE_SCRIPT} = keras_attention.cli:console_main" in entry_points


def test_wheel_holds_the_packages_and_nothing_else(built, wheel_files):
    dist_info = _dist_info(wheel_files)
    top_level = {name.split("/")[0] for name in wheel_files}
    assert top_level == {*PACKAGES, dist_info}, "no tests/, benchmarks/ ... in the wheel"
    for name in PACKAGE_DATA:
        assert name in wheel_files, f"package data {name} is not in the wheel"
        assert wheel_files[name] == (REPO / name).read_bytes()
    # Every file of the packages' source (modules, subpackages, data) is shipped.
    source = built["source"]
    expected = {path.relative_to(source).as_posix()
                for package in PACKAGES for path in (source / package).rglob("*")
                if path.is_file()}
    shipped = {name for name in wheel_files if name.split("/")[0] in PACKAGES}
    assert sorted(expected - shipped) == [], (
        "in the packages' source but not in the wheel: add them to "
        "[tool.setuptools.package-data] (or an __init__.py), or move them out")
    assert sorted(shipped - expected) == []


def test_sdist_contents(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = sdist.getnames()
        (top,) = {name.split("/")[0] for name in names}
        files = {name[len(top) + 1:] for name in names if name != top}
        pkg_info = _metadata(sdist.extractfile(f"{top}/PKG-INFO").read().decode("utf-8"))
    for name in SDIST_FILES + PACKAGE_DATA:
        assert name in files, f"{name} is not in the sdist"
    assert not {name.split("/")[0] for name in files} & {"tests", "benchmarks", "docs"}
    assert pkg_info["Name"] == DIST_NAME
    assert pkg_info["License-Expression"] == "Apache-2.0"


# Runs in the fresh venv: what it imports, from where, and the bundled corpus.
_INSTALLED_CHECK = """
import json, sys
import keras_attention, training.translation
from training.translation import data
corpus = data.load_bundled()
print(json.dumps({
    "files": [keras_attention.__file__, training.translation.__file__],
    "version": keras_attention.__version__,
    "corpus_path": data.bundled_corpus_path(),
    "pairs": [len(corpus.train), len(corpus.dev), len(corpus.test)],
    "sys_path": sys.path,
    "editable_finders": sorted(m for m in sys.modules if "__editable__" in m),
    "tensorflow_imported": "tensorflow" in sys.modules,
}))
"""


def test_wheel_installs_and_runs_in_a_fresh_venv(built):
    root = built["root"]
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-deps",
          "--no-cache-dir", "--disable-pip-version-check", built["wheel"]], cwd=root)
    site_packages = pathlib.Path(_run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=root, env=_clean_env()).stdout.strip())
    assert site_packages.is_relative_to(venv)
    # The dependencies (TensorFlow ...): the test venv's site-packages, as plain paths.
    test_venv_paths = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site_packages / "test-venv-dependencies.pth").write_text("\n".join(test_venv_paths) + "\n")

    result = _run([python, "-c", _INSTALLED_CHECK], cwd=root, env=_clean_env())
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for file in found["files"]:
        assert pathlib.Path(file).is_relative_to(site_packages), (
            f"imported {file}, not the wheel's copy in {site_packages}")
    assert found["editable_finders"] == [], "the test venv's editable install leaked in"
    assert str(REPO) not in found["sys_path"]
    assert found["version"] == keras_attention.__version__
    assert pathlib.Path(found["corpus_path"]).is_relative_to(site_packages)
    assert all(count > 0 for count in found["pairs"]), found["pairs"]
    assert not found["tensorflow_imported"], "the corpus loader should not need TensorFlow"

    script = venv / "bin" / CONSOLE_SCRIPT
    assert script.is_file(), f"no {CONSOLE_SCRIPT} console script in {script.parent}"
    help_text = _run([script, "--help"], cwd=root, env=_clean_env()).stdout
    assert f"usage: {CONSOLE_SCRIPT}" in help_text


# PyPI renders README.md without the repository around it: relative links and
# images point nowhere there. Code (fenced or inline) is not Markdown to check.
_FENCED_CODE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"(`+).+?\1", re.S)
_INLINE_TARGET = re.compile(r"(!?)\[[^\]]*\]\(\s*<?([^)\s>]+)")
_REFERENCE_TARGET = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_HTML_TARGET = re.compile(r"<(img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)", re.I)
_ABSOLUTE = re.compile(r"^(https?://|mailto:|#)", re.I)


def readme_relative_links(text):
    """(kind, target) of each relative link or image of a Markdown text."""
    text = _INLINE_CODE.sub("", _FENCED_CODE.sub("", text))
    found = [("image" if bang else "link", target)
             for bang, target in _INLINE_TARGET.findall(text)]
    found += [("reference link", target) for target in _REFERENCE_TARGET.findall(text)]
    found += [(f"<{tag}>", target) for tag, target in _HTML_TARGET.findall(text)]
    return [(kind, target) for kind, target in found if not _ABSOLUTE.match(target)]


def test_readme_relative_link_rule_itself():
    text = ("![a](docs/a.png) ![b](https://x.org/b.png) [c](CHANGELOG.md) [d](#usage)\n"
            "`[e](inline.md)`\n```python\nf = g[\"x\"](h)\n```\n[r]: docs/r.md\n"
            '<img src="docs/i.png"> <a href="http://x.org">x</a>\n')
    assert readme_relative_links(text) == [
        ("image", "docs/a.png"), ("link", "CHANGELOG.md"),
        ("reference link", "docs/r.md"), ("<img>", "docs/i.png")]


def test_readme_has_no_relative_links():
    offending = readme_relative_links((REPO / "README.md").read_text(encoding="utf-8"))
    assert offending == [], (
        "README.md is the package index's long description, where relative links and "
        "images render broken; make these absolute (https://github.com/... URLs):\n"
        + "\n".join(f"  {kind}: {target}" for kind, target in offending))
