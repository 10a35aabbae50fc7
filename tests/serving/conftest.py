"""Session fixtures: the small exports of `serving_exports`, written once
per pytest run in TF Serving's layout and shared by every xdist worker."""

import os

import pytest

from serving_exports import build_captioner, build_translator, build_video_captioner
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


@pytest.fixture(scope="session")
def video_captioner_dir(tmp_path_factory):
    """`<base>/video_captioner/1`: its own build (half a minute), made only
    for the tests that ask for it."""
    base = built_once(tmp_path_factory, "video_export",
                      lambda base: build_video_captioner().save(base, "video_captioner", 1))
    return os.path.join(str(base), "video_captioner")
