"""Session fixtures: the small exports of `serving_exports`, written once
per pytest run in TF Serving's layout and shared by every xdist worker."""

import os

import pytest

from serving_exports import build_captioner, build_translator
from shared_build import built_once


def _build_exports(base):
    build_translator().save(base, "translator", 1)
    build_captioner().save(base, "captioner", 1)


@pytest.fixture(scope="session")
def export_base(tmp_path_factory):
    """`<base>/translator/1` and `<base>/captioner/1`, built once per run."""
    return str(built_once(tmp_path_factory, "serving_exports", _build_exports))


@pytest.fixture(scope="session")
def translator_dir(export_base):
    return os.path.join(export_base, "translator")


@pytest.fixture(scope="session")
def captioner_dir(export_base):
    return os.path.join(export_base, "captioner")
