"""What the translator's export writes where the model chose `[UNK]`
(`unknown_words`): the most attended source word always (`copy`), only a
name (`copy_names`, the default) or nothing (`omit`). The trained
export's metadata.json records it (test_translation_training.py)."""

import pytest

# Source words as written, and per output position: its id (1 is [UNK]) and
# the source position it attends to most.
SOURCE = ["Then", "Moses", "said", ",", "“", "Let", "Aaron", "go", ",", "I", "say", "."]
OUTPUT = [  # (word the vocabulary gives, id, most attended source position)
    ("[UNK]", 1, 0),   # "Then": capitalized, but it opens the sentence
    ("[UNK]", 1, 1),   # "Moses": a name
    ("dijo", 5, 2),    # a known word: never replaced
    ("[UNK]", 1, 2),   # "said": lowercase
    ("[UNK]", 1, 5),   # "Let": capitalized after an opening quote
    ("[UNK]", 1, 6),   # "Aaron": a name
    ("[UNK]", 1, 9),   # "I": one letter, no name
    ("[UNK]", 1, 11),  # "."
]
EXPECTED = {
    "copy": ["Then", "Moses", "dijo", "said", "Let", "Aaron", "I", "."],
    "copy_names": ["", "Moses", "dijo", "", "", "Aaron", "", ""],
    "omit": ["", "", "dijo", "", "", "", "", ""],
}


def translator(unknown_words):
    """An untrained translator (the hook reads no weights)."""
    from training.core.encoders import RecurrentTextEncoder
    from training.core.seq2seq import AttentionSeq2Seq, make_decoder_cell
    from training.core.text import SPECIAL_TOKENS, Vocabulary
    from training.translation.export import Translator

    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + ["dijo"], max_tokens=16)
    model = AttentionSeq2Seq(RecurrentTextEncoder(vocabulary.size, 4, 4), vocabulary.size, 4,
                             make_decoder_cell(4, "additive", 4))
    return Translator(model, vocabulary, vocabulary, 8, unknown_words=unknown_words)


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_unknown_words_are_copied_as_the_setting_says(mode):
    import tensorflow as tf

    words = tf.constant([[word for word, _, _ in OUTPUT]])
    ids = tf.constant([[token_id for _, token_id, _ in OUTPUT]])
    attention = tf.one_hot([[position for _, _, position in OUTPUT]], len(SOURCE))
    rows = {"source_words": tf.constant([SOURCE])}
    replaced = translator(mode).replace_words(words, ids, attention, rows)
    assert [w.decode() for w in replaced.numpy()[0]] == EXPECTED[mode]


def test_the_source_words_the_rule_reads_split_quotes_off():
    """`prepare` gives the rule the words as written, an opening quote a
    word of its own (so "“Let" is seen to follow it)."""
    import tensorflow as tf

    _, _, rows, _ = translator("copy_names").prepare(
        tf.constant(["Then Moses said, “Let Aaron go, I say."]))
    assert [w.decode() for w in rows["source_words"].numpy()[0]] == SOURCE


def test_a_bad_setting_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown_words must be one of \('copy_names', "
                                         r"'copy', 'omit'\), received 'names'"):
        translator("names")


def test_the_config_refuses_another_value_and_defaults_to_names():
    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig

    assert config_lib.load(TranslationConfig, PRESETS, "main").unknown_words == "copy_names"
    with pytest.raises(config_lib.ConfigError, match="unknown_words"):
        config_lib.load(TranslationConfig, PRESETS, "tiny", None, ["unknown_words=all"])

