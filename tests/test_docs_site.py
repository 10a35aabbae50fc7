"""The documentation site builds with `mkdocs build --strict`: every page in
the navigation exists, every link and anchor resolves, and the API
reference renders from the docstrings without a warning."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_site_builds_strictly_and_needs_nothing_from_elsewhere(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--site-dir", str(site)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    api = (site / "api" / "index.html").read_text()
    for name in ("AdditiveAttention", "AttentionDecoderCell", "beam_search", "DecodingOptions"):
        assert f'id="{name}' in api or f'.{name}"' in api, name
    configuration = (site / "configuration" / "index.html").read_text()
    assert "no_repeat_ngram_size" in configuration
    # Pages work offline: no fonts or scripts fetched from another host.
    index = (site / "index.html").read_text()
    assert "fonts.googleapis.com" not in index and "fonts.gstatic.com" not in index
