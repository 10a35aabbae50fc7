"""Every Example in the library's docstrings runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import keras_attention

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(keras_attention.__path__, "keras_attention.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
