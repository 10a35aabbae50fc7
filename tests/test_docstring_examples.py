"""Every module of the library shows at least one Example in its docstrings,
and every Example runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import keras_attention

ALL_MODULES = sorted(
    info.name for info in pkgutil.walk_packages(keras_attention.__path__, "keras_attention.")
)

# Modules with nothing to show in an example, and why.
WITHOUT_EXAMPLES = {
    "keras_attention.decoding": "package: re-exports the decoding modules' names",
    "keras_attention.layers": "package: re-exports the layer classes",
    "keras_attention.serving": "package: holds no code",
    "keras_attention.serving.__main__": "runs the server (`python -m`)",
    "keras_attention.serving.app": "the ASGI app: it answers HTTP, tested in tests/serving",
    "keras_attention.testing": "package: holds no code",
}

MODULES = [name for name in ALL_MODULES if name not in WITHOUT_EXAMPLES]


def test_exclusions_name_modules_of_the_package():
    assert set(WITHOUT_EXAMPLES) <= set(ALL_MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
