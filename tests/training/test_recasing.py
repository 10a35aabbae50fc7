"""The recaser: forms counted away from sentence starts (hand-counted
cases), capitals at sentence starts, padding untouched, UTF-8 letters,
and the same answers inside a tf.function as eagerly."""

import tensorflow as tf

from training.core.recasing import Recaser

TEXTS = [
    "Y dijo Dios: Sea la luz.",      # "Y" starts the verse: not counted
    "Y vio Dios que la luz era buena. Y separó Dios la luz.",  # "Y" after "." neither
    "Éste es el libro de Moisés, y dios lo vio.",  # "dios" once lowercase, "Dios" 3 times
    "Amén. Amén.",
]


def decode(tensor):
    return [[w.decode("utf-8") for w in row] for row in tensor.numpy()]


def test_most_frequent_form_away_from_sentence_starts():
    forms = Recaser.from_texts(TEXTS).cased_forms
    assert forms["dios"] == "Dios"         # 3 against 1
    assert forms["moisés"] == "Moisés"
    assert forms["sea"] == "Sea"           # after ":", not a sentence start
    assert "y" not in forms                # every "Y" is at a start; inside, "y"
    assert "éste" not in forms and "amén" not in forms  # seen only at starts


def test_ties_keep_the_lowercase_form():
    forms = Recaser.from_texts(["a Roca y a roca ."]).cased_forms
    assert "roca" not in forms


def test_recasing_words():
    recaser = Recaser.from_texts(TEXTS)
    words = tf.constant([["y", "dios", "dijo", ".", "la", "luz", "?", "éste"],
                         ["moisés", "vio", "", "", "", "", "", ""],
                         ["", "", "", "", "", "", "", ""]])
    expected = [["Y", "Dios", "dijo", ".", "La", "luz", "?", "Éste"],
                ["Moisés", "vio", "", "", "", "", "", ""],
                ["", "", "", "", "", "", "", ""]]
    assert decode(recaser(words)) == expected
    assert decode(tf.function(recaser.__call__)(words)) == expected


def test_an_empty_table_still_capitalizes():
    recaser = Recaser({})
    assert decode(recaser(tf.constant([["ábaco", "x"]]))) == [["Ábaco", "x"]]


def test_the_two_steps_the_exporter_runs_around_copied_words():
    """Written forms before unknown words are copied from the source (which
    keep their case there), capitals at sentence starts after."""
    recaser = Recaser({"seal": "Seal", "dios": "Dios"})
    words = tf.constant([["y", "dios", "seal"]])
    assert decode(recaser.written_forms(words)) == [["y", "Dios", "Seal"]]
    copied = tf.constant([["y", "Dios", "seal"]])  # "seal" copied from the source
    assert decode(recaser.capitalize_sentence_starts(copied)) == [["Y", "Dios", "seal"]]


def test_a_sentence_start_passes_over_left_out_words():
    """An unknown word the export leaves out (written "") at a sentence's
    start hands the capital to the next written word."""
    recaser = Recaser({})
    words = tf.constant([["", "y", "dijo", ".", "", "", "luz", "x"],
                         ["a", "", "b", "", "", "", "", ""]])
    assert decode(recaser.capitalize_sentence_starts(words)) == [
        ["", "Y", "dijo", ".", "", "", "Luz", "x"], ["A", "", "b", "", "", "", "", ""]]
