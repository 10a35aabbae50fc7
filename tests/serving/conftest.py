"""Session fixtures: the small exports of `serving_exports`, written once
in TF Serving's layout."""

import os

import pytest

from serving_exports import build_captioner, build_translator


@pytest.fixture(scope="session")
def export_base(tmp_path_factory):
    """`<base>/translator/1` and `<base>/captioner/1`, built once per session."""
    base = str(tmp_path_factory.mktemp("serving_exports"))
    build_translator().save(base, "translator", 1)
    build_captioner().save(base, "captioner", 1)
    return base


@pytest.fixture(scope="session")
def translator_dir(export_base):
    return os.path.join(export_base, "translator")


@pytest.fixture(scope="session")
def captioner_dir(export_base):
    return os.path.join(export_base, "captioner")
