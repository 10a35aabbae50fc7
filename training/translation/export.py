"""The translator as a SavedModel: raw strings in, text and attention out.

Signatures (all take `text`: string `[B]`):

- `serving_default` (greedy): `translation [B]`, `tokens [B, T]`,
  `token_ids [B, T]`, `length [B]`, `score [B]` (log-probability),
  `attention [B, T, S]`, `source_tokens [B, S]`.
- `beam_search` (width and n-best fixed at export): `translations [B, N]`,
  `tokens [B, N, T]`, `lengths [B, N]`, `scores [B, N]` (GNMT score),
  `attention [B, N, T, S]`, `source_tokens [B, S]`.

Defined answers: an empty (or all-space) input translates to "" with empty
tokens; inputs longer than `max_source_tokens` words are cut there;
invalid UTF-8 bytes become U+FFFD before tokenization. Unknown output words
are replaced by the source word they attend to most (Luong et al. 2015).
Only stock TensorFlow ops, so TensorFlow Serving can run it.
"""

import os

import tensorflow as tf

from training.translation.text_processing import END_ID, PAD_ID, START_ID, UNK_ID, detokenize_words

_TEXT = tf.TensorSpec([None], tf.string, name="text")


class Translator(tf.Module):
    """Wraps a trained `AttentionSeq2Seq` with its vocabularies.

    Args:
        model: The trained model (ids -> logits).
        source_vocabulary, target_vocabulary: `Vocabulary` modules.
        max_target_tokens: Most output words.
        beam_width, length_penalty, num_hypotheses: Beam signature settings.
    """

    def __init__(self, model, source_vocabulary, target_vocabulary, max_target_tokens,
                 beam_width=4, length_penalty=0.6, num_hypotheses=4):
        super().__init__(name="translator")
        self.model = model
        self.source_vocabulary = source_vocabulary
        self.target_vocabulary = target_vocabulary
        self.max_target_tokens = int(max_target_tokens)
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self.num_hypotheses = min(int(num_hypotheses), self.beam_width)

    def _prepare(self, text):
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        source_tokens = self.source_vocabulary.tokens(text)  # ragged [B, (S)]
        source_ids = self.source_vocabulary.encode_tokens(source_tokens)  # --> [B, S]
        # An all-empty batch still needs one (padding) position.
        source_ids = tf.pad(source_ids, [[0, 0], [0, tf.maximum(1 - tf.shape(source_ids)[1], 0)]])
        source_lengths = tf.cast(source_tokens.row_lengths(), tf.int32)
        source_words = source_tokens.to_tensor("", shape=tf.shape(source_ids))
        max_length = tf.minimum(self.max_target_tokens, 2 * tf.shape(source_ids)[1] + 10)
        return source_ids, source_words, source_lengths, max_length

    def _finish(self, ids, lengths, attention, source_words, source_lengths):
        """Words, UNK replacement, detokenized text; `ids [R, T]`,
        `attention [R, T, S]`, `source_words [R, S]`, `source_lengths [R]`."""
        empty_source = source_lengths == 0
        lengths = tf.where(empty_source, 0, lengths)
        steps = tf.shape(ids)[1]
        valid = tf.sequence_mask(lengths, steps)  # --> [R, T]
        ids = tf.where(valid, ids, PAD_ID)
        words = self.target_vocabulary.words_of(ids)
        aligned = tf.gather(source_words, tf.argmax(attention, axis=-1, output_type=tf.int32),
                            batch_dims=1)  # --> [R, T] most-attended source word
        words = tf.where(tf.logical_and(ids == UNK_ID, aligned != ""), aligned, words)
        words = tf.where(valid, words, "")
        text = detokenize_words(tf.RaggedTensor.from_tensor(words, lengths=lengths))
        attention = attention * tf.cast(valid, attention.dtype)[..., None]
        return ids, words, lengths, text, attention

    @tf.function(input_signature=[_TEXT])
    def translate(self, text):
        source_ids, source_words, source_lengths, max_length = self._prepare(text)
        result = self.model.generate(source_ids, START_ID, END_ID, max_length, strategy="greedy")
        ids, words, lengths, translation, attention = self._finish(
            result.ids, result.lengths, result.attention, source_words, source_lengths
        )
        return {
            "translation": translation,
            "tokens": words,
            "token_ids": ids,
            "length": lengths,
            "score": tf.where(source_lengths == 0, 0.0, result.log_probs),
            "attention": attention,
            "source_tokens": source_words,
        }

    @tf.function(input_signature=[_TEXT])
    def translate_beam(self, text):
        source_ids, source_words, source_lengths, max_length = self._prepare(text)
        result = self.model.generate(
            source_ids, START_ID, END_ID, max_length, strategy="beam", beam_width=self.beam_width,
            length_penalty=self.length_penalty, num_hypotheses=self.num_hypotheses,
        )
        n = self.num_hypotheses
        batch = tf.shape(result.ids)[0]
        flat = lambda x: tf.reshape(x, tf.concat([[batch * n], tf.shape(x)[2:]], 0))  # noqa: E731
        unflat = lambda x: tf.reshape(x, tf.concat([[batch, n], tf.shape(x)[1:]], 0))  # noqa: E731
        ids, words, lengths, text_out, attention = self._finish(
            flat(result.ids), flat(result.lengths), flat(result.attention),
            tf.repeat(source_words, n, axis=0), tf.repeat(source_lengths, n, axis=0),
        )
        return {
            "translations": unflat(text_out),
            "tokens": unflat(words),
            "token_ids": unflat(ids),
            "lengths": unflat(lengths),
            "scores": tf.where(source_lengths[:, None] == 0, 0.0, result.scores),
            "attention": unflat(attention),
            "source_tokens": source_words,
        }

    def save(self, export_dir, name, version):
        """Writes `<export_dir>/<name>/<version>/` (TF Serving's layout)."""
        path = os.path.join(export_dir, name, str(version))
        tf.saved_model.save(self, path, signatures={
            "serving_default": self.translate.get_concrete_function(),
            "beam_search": self.translate_beam.get_concrete_function(),
        })
        with open(os.path.join(path, "assets.extra.README"), "w", encoding="utf-8") as handle:
            handle.write(__doc__)
        return path
