"""The translation report's looping outputs and copied words, against
hand-counted cases (training/translation/output_checks.py)."""

import numpy as np
import pytest
from training.translation.output_checks import copied_words, looping_outputs, repeats_a_pair

UNK = 1  # training.core.text.UNK_ID


@pytest.mark.parametrize("text, times, expected", [
    ("de la tierra de la tierra de la", 3, True),    # "de la" three times
    ("de la tierra de la tierra", 3, False),         # twice
    ("de la tierra de la tierra", 2, True),
    ("De la tierra, de LA tierra; de la casa", 3, True),  # case does not hide it
    ("de la tierra, de la tierra; de la.", 3, False),    # "la." is another word
    ("y, y, y, y", 3, False),                        # punctuation sticks to its word
    ("y y y", 3, False),                             # "y y" twice
    ("y y y y", 3, True),
    ("", 3, False),
    ("palabra", 3, False),
])
def test_a_pair_written_three_times_is_found(text, times, expected):
    assert repeats_a_pair(text, times) is expected


def test_looping_outputs_counts_outputs_not_repeats():
    texts = ["a b a b a b a b", "a b c", "x y x y x y", ""]
    assert looping_outputs(texts) == 2
    assert looping_outputs(texts, times=4) == 1


def row(words, ids):
    return {"tokens": np.array([w.encode() for w in words]), "token_ids": np.array(ids),
            "length": np.array(len(words))}


def test_copied_words_are_the_unknown_ids_and_the_reference_may_keep_them():
    results = [
        row(["Y", "Make", "de", "gopher", "."], [5, UNK, 7, UNK, 4]),  # two copies, none kept
        row(["Moses", "dijo", "."], [UNK, 9, 4]),                      # kept: a name
        row(["el", "hombre"], [6, 8]),                                 # none
        row(["", "y", "", "."], [UNK, 9, UNK, 4]),                     # two left out
    ]
    references = ["Y haz de madera de gofer .", "Y Moses dijo .", "el hombre", "y ."]
    assert copied_words(results, references) == {
        "copied": 3, "copied_kept": 1, "outputs_with_copies": 2,
        "examples": ["Make", "gopher", "Moses"], "left_out": 2}
    assert copied_words(results, references, examples=1)["examples"] == ["Make"]


def test_words_after_the_length_are_not_counted_and_beam_rows_take_the_best():
    greedy = {"tokens": np.array([b"a", b"Z", b"Q"]), "token_ids": np.array([5, UNK, UNK]),
              "length": np.array(2)}
    beam = {"tokens": np.array([[b"Q", b"b"], [b"a", b"b"]]),
            "token_ids": np.array([[UNK, 6], [UNK, UNK]]), "length": np.array([2, 2])}
    assert copied_words([greedy, beam], ["a", "b q"]) == {
        "copied": 2, "copied_kept": 1, "outputs_with_copies": 2, "examples": ["Z", "Q"],
        "left_out": 0}


def test_results_and_references_must_pair_up():
    with pytest.raises(ValueError, match="2 results but 1 references"):
        copied_words([row(["a"], [5]), row(["b"], [5])], ["a"])


def test_the_module_example_runs():
    import doctest

    from training.translation import output_checks

    result = doctest.testmod(output_checks)
    assert result.attempted == 2 and result.failed == 0
