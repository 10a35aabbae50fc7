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


# "santo" is lowercase alone (3 of 5 times away from starts) but "Santo"
# after "espíritu" (twice); "no" is "No" after ":" (twice), "no" elsewhere.
CONTEXT_TEXTS = [
    "El Espíritu Santo vino, y el monte santo tembló.",
    "Y dijo: No temas. Y el Espíritu Santo habló: No.",
    "Pues no, no y santo es el lugar santo.",
]


def test_forms_after_a_word_where_they_differ_from_the_words_own():
    recaser = Recaser.from_texts(CONTEXT_TEXTS, min_context_count=2)
    assert "santo" not in recaser.cased_forms and "no" not in recaser.cased_forms
    assert recaser.cased_forms["espíritu"] == "Espíritu"
    assert recaser.context_forms == {("espíritu", "santo"): "Santo", (":", "no"): "No"}
    # Seen once only after its word: below min_context_count, no entry.
    assert Recaser.from_texts(CONTEXT_TEXTS, min_context_count=3).context_forms == {}
    words = tf.constant([["el", "espíritu", "santo", "dijo", ":", "no", ",", "no", "santo"],
                         ["el", "monte", "", "santo", ":", "", "no", "", ""]])
    expected = [["El", "Espíritu", "Santo", "dijo", ":", "No", ",", "no", "santo"],
                ["El", "monte", "", "santo", ":", "", "No", "", ""]]
    assert decode(recaser(words)) == expected
    assert decode(tf.function(recaser.__call__)(words)) == expected


def test_an_opening_question_mark_passes_the_sentence_start_on():
    """"¿Qué" opens a sentence: the capital goes to the word after "¿",
    which the counts also take for a sentence start."""
    recaser = Recaser.from_texts(["¿Qué dijo? Dijo: ¿qué es?", "¡Oh vosotros! ¿Qué?"])
    assert "qué" not in recaser.cased_forms and "oh" not in recaser.cased_forms
    words = tf.constant([["¿", "qué", "es", "?", "¡", "oh", "!", "", "¿", "qué"]])
    assert decode(recaser(words)) == [["¿", "Qué", "es", "?", "¡", "Oh", "!", "", "¿", "Qué"]]
