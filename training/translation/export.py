"""The translator as a SavedModel: raw strings in, text and attention out.

The signatures and their outputs are every task's (`training.core.export`);
the input is `source_text`, string `[B]`, and two more outputs are
`source_tokens [B, S]`, the words the attention axis S stands for, and
`source_length [B]`, how many of them each row has.

Defined answers: an empty (or all-space) input translates to "" with no
tokens and score 0; inputs longer than `max_source_tokens` words are cut
there; invalid UTF-8 bytes become U+FFFD before tokenization. Each output
stops at `min(max_target_tokens, 2 * source words + 10)` words, a limit of
its own row. Where the model writes `[UNK]`, the export writes the source
word it attends to most, as written there (Luong et al. 2015): if that
word is a name (`unknown_words="copy_names"`, the default; otherwise
nothing is written there), always (`"copy"`) or never (`"omit"`). With a
`Recaser` the other words take the case they have in the training
targets, and a sentence starts with a capital. Only stock TensorFlow ops,
so TensorFlow Serving can run it.
"""

import tensorflow as tf

from training.core.decoding_options import DecodingOptions
from training.core.export import SequenceExporter
from training.core.text import UNK_ID, tokenize
from training.translation.config import UNKNOWN_WORDS

# A source word written capitalized is taken for a name unless it opens the
# sentence or follows one of these (a quote, a clause: "said, “Let ...").
_OPENERS = r"[\"“‘'(:;.?!]"


class Translator(SequenceExporter):
    """Wraps a trained `AttentionSeq2Seq` with its vocabularies.

    Args:
        model: The trained model (ids -> logits).
        source_vocabulary, target_vocabulary: `Vocabulary` modules.
        max_target_tokens: Most output words.
        decoding: `DecodingOptions` of both signatures.
        recaser: Optional `Recaser`: output words in the case a reader
            expects (unknown words copied from the source keep its case).
        unknown_words: Where the model writes `[UNK]`: `"copy_names"`,
            `"copy"` or `"omit"` (see the module docstring).

    Example (`translator.save("export", "translator", 1)` writes it):

        out = translator.greedy(tf.constant(["In the beginning God created the heavens."]))
        out["text"], out["attention"], out["source_tokens"]   # [B], [B, T, S], [B, S]
        out["source_length"]                                  # [B]
    """

    task = "translation"
    input_name = "source_text"
    input_kind = "text"
    attention_axes = ("source_token",)
    extra_output_axes = {"source_tokens": ("source_token",), "source_length": ()}
    axis_lengths = {"source_token": "source_length"}

    def __init__(self, model, source_vocabulary, target_vocabulary, max_target_tokens,
                 decoding=DecodingOptions(), recaser=None, unknown_words="copy_names"):
        if unknown_words not in UNKNOWN_WORDS:
            raise ValueError(f"unknown_words must be one of {UNKNOWN_WORDS}, received "
                             f"{unknown_words!r}")
        self.source_vocabulary = source_vocabulary
        self.unknown_words = unknown_words
        super().__init__(model, target_vocabulary, max_target_tokens, decoding,
                         name="translator", recaser=recaser)

    def input_spec(self):
        return tf.TensorSpec([None], tf.string, name=self.input_name)

    def prepare(self, text):
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        source_tokens = self.source_vocabulary.tokens(text)  # ragged [B, (S)]
        source_ids = self.source_vocabulary.encode_tokens(source_tokens)  # --> [B, S]
        # An all-empty batch still needs one (padding) position.
        source_ids = tf.pad(source_ids, [[0, 0], [0, tf.maximum(1 - tf.shape(source_ids)[1], 0)]])
        source_lengths = tf.cast(source_tokens.row_lengths(), tf.int32)  # --> [B]
        max_lengths = 2 * source_lengths + 11  # 2 S + 10 words and the end token
        # The same words as written (case never moves a word boundary), for copying.
        written = tokenize(text, self.source_vocabulary.max_tokens, lowercase=False)
        rows = {"empty": source_lengths == 0,
                "source_words": written.to_tensor("", shape=tf.shape(source_ids))}
        # Without the padding position, so S is the batch's longest row.
        return source_ids, max_lengths, rows, {"source_tokens": source_tokens.to_tensor(""),
                                               "source_length": source_lengths}

    def replace_words(self, words, ids, attention, rows):
        unknown = ids == UNK_ID  # --> [R, T]
        if self.unknown_words == "omit":
            return tf.where(unknown, "", words)
        source_words = rows["source_words"]  # [R, S]
        position = tf.argmax(attention, axis=-1, output_type=tf.int32)  # --> [R, T]
        aligned = tf.gather(source_words, position, batch_dims=1)  # most-attended word
        copy = aligned != ""
        if self.unknown_words == "copy_names":
            before = tf.gather(source_words, tf.maximum(position - 1, 0), batch_dims=1)
            copy &= (position > 0) & tf.strings.regex_full_match(aligned, r"\p{Lu}.+")
            copy &= ~tf.strings.regex_full_match(before, _OPENERS)
        return tf.where(unknown, tf.where(copy, aligned, ""), words)

    def metadata_extras(self):
        return {"source_vocabulary_size": self.source_vocabulary.size,
                "max_input_tokens": self.source_vocabulary.max_tokens,
                "unknown_words": self.unknown_words}
