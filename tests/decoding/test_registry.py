"""Decoding methods by name: `keras_attention.decoding.get / names / register`."""

import numpy as np
import pytest

from keras_attention import decoding
from keras_attention.decoding import registry

from stub_models import (
    END,
    MAX_LENGTH,
    evaluate_ids,
    greedy_reference,
    random_scripted_model,
    to_numpy,
)

BUILT_IN = {
    "beam": decoding.beam_search,
    "greedy": decoding.greedy_search,
    "sampling": decoding.sampling_search,
}


@pytest.fixture(autouse=True)
def _private_table(monkeypatch):
    """Each test registers into its own copy of the table, so nothing leaks."""
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))


def test_get_returns_the_search_functions():
    for name, fn in BUILT_IN.items():
        assert decoding.get(name) is fn
    assert decoding.names() == sorted(BUILT_IN)
    assert {"get", "names", "register"} <= set(decoding.__all__)


@pytest.mark.parametrize("name", ["Beam", "nucleus", "", None])
def test_unknown_name_lists_the_known_ones(name):
    with pytest.raises(ValueError, match="Unknown decoding method") as error:
        decoding.get(name)
    message = str(error.value)
    assert repr(name) in message
    for known in BUILT_IN:
        assert repr(known) in message


def test_registered_method_round_trips_and_decodes():
    """A user's method, found by name, runs like the built-in ones."""

    def two_token_greedy(step_fn, initial_state, start_tokens, end_token, max_length,
                         pad_token=0, constants=None):
        return decoding.greedy_search(step_fn, initial_state, start_tokens, end_token,
                                      min(max_length, 2), pad_token=pad_token,
                                      constants=constants)

    assert decoding.register("two_token_greedy", two_token_greedy) is two_token_greedy
    assert decoding.get("two_token_greedy") is two_token_greedy
    assert decoding.names() == sorted([*BUILT_IN, "two_token_greedy"])

    model = random_scripted_model(seed=9)
    rows, starts = np.arange(4), np.array([0, 1, 2, 0])
    search = decoding.get("two_token_greedy")
    out = to_numpy(search(model.step_fn, model.initial_state(rows), starts, END, MAX_LENGTH))
    expected = greedy_reference(model, rows, starts, max_length=2)
    assert out["ids"].shape == (4, 2)
    for b, hypothesis in enumerate(expected):
        np.testing.assert_array_equal(out["ids"][b], hypothesis.padded_ids(2))
        assert out["lengths"][b] == hypothesis.length
    # ... and is scored like any greedy output.
    for b, (row, start) in enumerate(zip(rows, starts)):
        reference = evaluate_ids(model, row, start, out["ids"][b], max_length=2)
        np.testing.assert_allclose(out["log_probs"][b], reference.log_prob, rtol=1e-5)


def test_register_refuses_taken_names_unless_overridden():
    def my_beam(*args, **kwargs):
        return decoding.beam_search(*args, **kwargs)

    with pytest.raises(ValueError, match="already registered as 'beam'.*override=True"):
        decoding.register("beam", my_beam)
    assert decoding.get("beam") is decoding.beam_search
    decoding.register("beam", my_beam, override=True)
    assert decoding.get("beam") is my_beam


def test_register_checks_its_arguments():
    with pytest.raises(ValueError, match="non-empty str"):
        decoding.register("", decoding.greedy_search)
    with pytest.raises(ValueError, match="non-empty str"):
        decoding.register(3, decoding.greedy_search)
    with pytest.raises(ValueError, match="callable"):
        decoding.register("not_a_function", "greedy")
    assert decoding.names() == sorted(BUILT_IN)
