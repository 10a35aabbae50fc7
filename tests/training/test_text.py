"""Word tokenization (TensorFlow string ops) and vocabularies, on hand-written cases."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from training.core import text as tp
from training.core.text import Vocabulary, build_vocabulary

SPECIALS = ["", "[UNK]", "[START]", "[END]"]


def tokens_of(text, max_tokens=None):
    """One text (str or bytes) -> its list of str tokens."""
    batch = tp.tokenize(tf.constant([text]), max_tokens)
    return [token.decode("utf-8") for token in batch.to_list()[0]]


def normalized(text):
    return tp.normalize(tf.constant([text])).numpy()[0].decode("utf-8")


def round_trip(texts):
    out = tp.detokenize_words(tp.tokenize(tf.constant(texts)))
    return [t.decode("utf-8") for t in out.numpy()]


# ------------------------------------------------------------ tokenization
@pytest.mark.parametrize("text, expected", [
    ("¿Dónde está?", ["¿", "dónde", "está", "?"]),
    ("¡HOLA, Señor Núñez!", ["¡", "hola", ",", "señor", "núñez", "!"]),
    ("ÁRBOL Ñandú ÉL Über", ["árbol", "ñandú", "él", "über"]),
    ("Hello, world.", ["hello", ",", "world", "."]),
    ("Wait...what?!", ["wait", ".", ".", ".", "what", "?", "!"]),
    ("(a) [b] {c}", ["(", "a", ")", "[", "b", "]", "{", "c", "}"]),
    ("«Sí» —dijo— “no”", ["«", "sí", "»", "—", "dijo", "—", "“", "no", "”"]),
    ("x;y:z", ["x", ";", "y", ":", "z"]),
    ("  many    spaces\there\n\nand\r\nlines  ", ["many", "spaces", "here", "and", "lines"]),
    ("", []),
    ("    ", []),
    ("\t\n", []),
    ("...", [".", ".", "."]),
    ("3 + 4 = 7", ["3", "+", "4", "=", "7"]),
])
def test_tokenize_hand_written(text, expected):
    assert tokens_of(text) == expected


def test_normalize_spacing_and_case():
    assert normalized("  ¿Dónde   ESTÁ  el baño?  ") == "¿ dónde está el baño ?"
    assert normalized("A,B") == "a , b"
    assert normalized("") == ""


def test_invalid_utf8_is_replaced_not_fatal():
    tokens = tokens_of(b"\xff\xfe abc \xc3( d\xe9f")
    # Each bad byte becomes U+FFFD, which (not a letter or digit) is split
    # off like punctuation.
    assert tokens == ["\ufffd", "\ufffd", "abc", "\ufffd", "(", "d", "\ufffd", "f"]
    # The result is valid UTF-8 text (it round-trips through Python's decoder above).


def test_inner_apostrophes_and_hyphens_stay_in_words():
    assert tokens_of("God’s burnt-offering isn't -x- 'y'") == [
        "god’s", "burnt-offering", "isn’t", "-", "x", "-", "'", "y", "'"]
    # Other punctuation, and symbols RE2's ASCII \W would miss, are split off.
    assert tokens_of("a+b «c» 3.5%") == ["a", "+", "b", "«", "c", "»", "3", ".", "5", "%"]


def test_batch_of_mixed_texts():
    batch = tp.tokenize(tf.constant(["a b", "", "Uno, dos."]))
    assert batch.to_list() == [[b"a", b"b"], [], [b"uno", b",", b"dos", b"."]]


@pytest.mark.parametrize("max_tokens, expected", [
    (1, ["uno"]),
    (3, ["uno", ",", "dos"]),
    (6, ["uno", ",", "dos", ",", "tres", "."]),
    (50, ["uno", ",", "dos", ",", "tres", "."]),
])
def test_truncation_counts_punctuation_tokens(max_tokens, expected):
    assert tokens_of("Uno, dos, tres.", max_tokens) == expected


# ---------------------------------------------------------- detokenization
@pytest.mark.parametrize("text, expected", [
    ("Hello, world!", "hello, world!"),
    ("¿Dónde está el baño?", "¿dónde está el baño?"),
    ("¡Hola!   ¿Qué tal?", "¡hola! ¿qué tal?"),
    ("He said (quietly) that: yes; no.", "he said (quietly) that: yes; no."),
    ("Wait ... what ?", "wait... what?"),
    ("«Sí» , dijo él .", "«sí», dijo él."),
    ("En el principio [creó] Dios los cielos y la tierra.",
     "en el principio [creó] dios los cielos y la tierra."),
    ("", ""),
])
def test_detokenize_round_trip(text, expected):
    assert round_trip([text]) == [expected]


def test_detokenize_dense_with_padding():
    words = tf.constant([["hola", ",", "mundo", "!", ""],
                         ["¿", "qué", "?", "", ""],
                         ["", "", "", "", ""]])
    texts = [t.decode("utf-8") for t in tp.detokenize_words(words).numpy()]
    assert texts == ["hola, mundo!", "¿qué?", ""]


def test_detokenize_drops_empty_words_inside_a_row():
    """A word written as "" (an unknown word the translator left out) takes
    no space, before punctuation too."""
    words = tf.ragged.constant([["y", "su", "", "."], ["", "¿", "", "qué", "", "?"]])
    texts = [t.decode("utf-8") for t in tp.detokenize_words(words).numpy()]
    assert texts == ["y su.", "¿qué?"]


# -------------------------------------------------------------- vocabulary
def test_build_vocabulary_order_frequency_then_word():
    texts = ["b a a", "c b A", "d", "e e e e"]
    # counts: e 4, a 3, b 2, c 1, d 1 -> frequency descending, ties alphabetical
    assert build_vocabulary(texts, max_size=100) == SPECIALS + ["e", "a", "b", "c", "d"]
    assert build_vocabulary(texts, max_size=6) == SPECIALS + ["e", "a"]
    assert build_vocabulary(texts, max_size=100, min_count=2) == SPECIALS + ["e", "a", "b"]
    assert build_vocabulary(texts, max_size=100, min_count=5) == SPECIALS


def test_build_vocabulary_counts_punctuation_and_lowercases():
    words = build_vocabulary(["¿Dónde?", "dónde, DÓNDE."], max_size=100)
    assert words == SPECIALS + ["dónde", ",", ".", "?", "¿"]


def test_build_vocabulary_batches_do_not_change_the_result():
    texts = [f"w{i % 7} w{i % 3} x" for i in range(50)]
    assert build_vocabulary(texts, 20, batch_size=4) == build_vocabulary(texts, 20)


def test_build_vocabulary_of_characters_keeps_case_spaces_and_punctuation():
    """`split=list`: each character is a token, as written (text recognition);
    reference: a Counter ranked by count, then code point."""
    import collections

    texts = ["Ab, ba!", "a  A", "zZ 9"]
    counts = collections.Counter("".join(texts))
    ranked = sorted(counts, key=lambda character: (-counts[character], character))
    assert build_vocabulary(texts, 100, split=list) == SPECIALS + ranked
    assert build_vocabulary(texts, 7, split=list) == SPECIALS + ranked[:3]
    assert ranked[0] == " " and "A" in ranked and "a" in ranked


def test_build_vocabulary_rejects_tiny_size():
    with pytest.raises(ValueError, match="max_size"):
        build_vocabulary(["a"], max_size=4)


def make_vocabulary(max_tokens=10):
    return Vocabulary(SPECIALS + ["a", "b", "ñu", ",", "."], max_tokens)


def ids(vocabulary, texts, **kwargs):
    return vocabulary.encode(tf.constant(texts), **kwargs).numpy().tolist()


def test_vocabulary_encode_unknown_and_padding():
    vocabulary = make_vocabulary()
    assert vocabulary.size == 9
    assert ids(vocabulary, ["a b zzz", "Ñu, a.", ""]) == [
        [4, 5, 1, 0],
        [6, 7, 4, 8],
        [0, 0, 0, 0],
    ]


def test_vocabulary_start_end_markers():
    vocabulary = make_vocabulary()
    assert ids(vocabulary, ["a", "a b"], add_end=True) == [[4, 3, 0], [4, 5, 3]]
    assert ids(vocabulary, ["a", "a b"], add_start=True) == [[2, 4, 0], [2, 4, 5]]
    assert ids(vocabulary, ["b", ""], add_start=True, add_end=True) == [[2, 5, 3], [2, 3, 0]]


def test_vocabulary_truncates_before_end_marker():
    vocabulary = make_vocabulary(max_tokens=2)
    assert ids(vocabulary, ["a b a b a"], add_end=True) == [[4, 5, 3]]
    assert [t.decode() for t in vocabulary.tokens(tf.constant(["b a b"])).to_list()[0]] == [
        "b", "a"]


def test_vocabulary_words_of_round_trip():
    vocabulary = make_vocabulary()
    texts = ["Ñu, a.", "b b a", "a zzz"]
    encoded = vocabulary.encode(tf.constant(texts))
    words = vocabulary.words_of(encoded).numpy()
    joined = [b" ".join(w for w in row if w).decode("utf-8") for row in words]
    assert joined == ["ñu , a .", "b b a", "a [UNK]"]
    assert vocabulary.words_of(np.array([[2, 3, 0]])).numpy().tolist() == [
        [b"[START]", b"[END]", b""]]


def test_vocabulary_json_round_trip():
    vocabulary = make_vocabulary(max_tokens=7)
    text = vocabulary.to_json()
    assert "ñu" in text  # stored as readable UTF-8
    assert json.loads(text) == {"words": SPECIALS + ["a", "b", "ñu", ",", "."], "max_tokens": 7}
    again = Vocabulary.from_json(text)
    assert again.words == vocabulary.words and again.max_tokens == 7
    texts = ["ñu a b , .", "zzz"]
    assert ids(again, texts, add_end=True) == ids(vocabulary, texts, add_end=True)


def test_vocabulary_requires_special_tokens_first():
    with pytest.raises(ValueError, match=re.escape("start with ('', '[UNK]', '[START]', "
                                                   "'[END]'), received ('a', 'b')")):
        Vocabulary(["a", "b"], 5)
    with pytest.raises(ValueError, match=re.escape("received ('', '[UNK]', '[END]', '[START]')")):
        Vocabulary(["", "[UNK]", "[END]", "[START]", "a"], 5)


def test_vocabulary_from_built_words_encodes_its_texts_without_unknowns():
    texts = ["El perro come.", "¿Come el gato?", "El gato, el perro."]
    vocabulary = Vocabulary(build_vocabulary(texts, 100), 20)
    encoded = np.array(ids(vocabulary, texts))
    assert (encoded != tp.UNK_ID).all()
    words = vocabulary.words_of(encoded).numpy()
    rebuilt = tp.detokenize_words(tf.constant(words)).numpy()
    assert [t.decode() for t in rebuilt] == ["el perro come.", "¿come el gato?",
                                            "el gato, el perro."]
