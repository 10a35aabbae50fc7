"""Text for every task (source sentences, captions): word-level tokenization
and vocabularies in stock TensorFlow string ops.

Everything here runs as TensorFlow graph ops (no Python, no tf-text), so
the same functions serve the tf.data pipeline and the exported SavedModel,
which TensorFlow Serving's stock binary can run.

Ids: 0 padding, 1 unknown word, 2 start, 3 end, then the vocabulary.
"""

import collections
import json
import os

import tensorflow as tf

PAD, UNK, START, END = "", "[UNK]", "[START]", "[END]"
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
SPECIAL_TOKENS = (PAD, UNK, START, END)

# Every character that is not a letter, digit or space is split off as its
# own token (RE2's \pL and \pN are Unicode-aware, unlike \w), except
# apostrophes and hyphens between two letters ("god’s", "burnt-offering"),
# which are hidden behind control characters while punctuation is split.
_PUNCTUATION = r"([^\pL\pN\s\x01\x02])"
_INNER_APOSTROPHE = (r"(\pL)['’](\pL)", "\\1\x01\\2")
_INNER_HYPHEN = (r"(\pL)-(\pL)", "\\1\x02\\2")
_NO_SPACE_BEFORE = r""" ([.,;:!?)\]}»”’…])"""
_NO_SPACE_AFTER = r"""([¿¡(\[{«“‘]) """


def normalize(texts, lowercase=True):
    """`[B]` raw strings -> `[B]` normalized strings (valid UTF-8, lowercase,
    punctuation spaced out, single spaces). With `lowercase=False` the case
    is kept; the words are the same (case never moves a word boundary)."""
    texts = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, "[\x01\x02]", " ")
    for pattern, rewrite in (_INNER_APOSTROPHE, _INNER_HYPHEN):
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
    texts = tf.strings.regex_replace(texts, _PUNCTUATION, r" \1 ")
    texts = tf.strings.regex_replace(texts, "\x01", "’")
    texts = tf.strings.regex_replace(texts, "\x02", "-")
    texts = tf.strings.regex_replace(texts, r"\s+", " ")
    return tf.strings.strip(texts)


def tokenize(texts, max_tokens=None, lowercase=True):
    """`[B]` strings -> ragged `[B, (tokens)]` words, cut at `max_tokens`."""
    tokens = tf.strings.split(normalize(texts, lowercase))
    if max_tokens is not None:
        tokens = tokens[:, :max_tokens]
    return tokens


def detokenize_words(tokens):
    """Ragged or dense `[B, T]` word strings -> `[B]` text ("" tokens dropped)."""
    if not isinstance(tokens, tf.RaggedTensor):
        tokens = tf.RaggedTensor.from_tensor(tokens, padding="")
    # Inner "" too (an unknown word the export left out): "su" "" "." -> "su."
    tokens = tf.ragged.boolean_mask(tokens, tokens != "")
    texts = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    texts = tf.strings.regex_replace(texts, _NO_SPACE_BEFORE, r"\1")
    texts = tf.strings.regex_replace(texts, _NO_SPACE_AFTER, r"\1")
    texts = tf.strings.regex_replace(texts, r"\s+", " ")
    return tf.strings.strip(texts)


def build_vocabulary(texts, max_size, min_count=1, batch_size=4096, split=None):
    """Most frequent tokens of `texts` (a list of strings), ties by token.

    `split` is `text -> tokens`; None: the words of `tokenize` (`list`: the
    characters). Returns the id -> token list, special tokens first, at
    most `max_size` entries in all.

    >>> build_vocabulary(["abba", "cab"], 6, split=list)
    ['', '[UNK]', '[START]', '[END]', 'a', 'b']
    """
    if max_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"`max_size` must exceed {len(SPECIAL_TOKENS)}, received {max_size}")
    counts = collections.Counter()
    if split is not None:
        for text in texts:
            counts.update(split(text))
    else:  # the TensorFlow tokenizer, a batch of texts at a time
        for start in range(0, len(texts), batch_size):
            batch = tokenize(tf.constant(texts[start:start + batch_size]))
            for row in batch.to_list():
                counts.update(word.decode("utf-8") for word in row)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    ranked = sorted(
        (item for item in counts.items() if item[1] >= min_count), key=lambda x: (-x[1], x[0])
    )
    words = [word for word, _ in ranked[: max_size - len(SPECIAL_TOKENS)]]
    return list(SPECIAL_TOKENS) + words


class Vocabulary(tf.Module):
    """Word <-> id tables for one language (stock lookup ops).

    Args:
        words: The id -> word list from `build_vocabulary`.
        max_tokens: Words kept per text when encoding.
    """

    def __init__(self, words, max_tokens, name=None):
        super().__init__(name=name)
        if list(words[: len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
            raise ValueError(f"a vocabulary must start with {SPECIAL_TOKENS}, received "
                             f"{tuple(words[:len(SPECIAL_TOKENS)])}")
        self.words = list(words)
        self.max_tokens = int(max_tokens)
        self._words = tf.constant(self.words)
        self._ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                self._words, tf.range(len(self.words), dtype=tf.int64)
            ),
            default_value=UNK_ID,
        )

    @property
    def size(self):
        return len(self.words)

    def tokens(self, texts):
        """`[B]` strings -> ragged `[B, (<= max_tokens)]` words."""
        return tokenize(texts, self.max_tokens)

    def encode(self, texts, add_start=False, add_end=False):
        """`[B]` strings -> int32 `[B, T]` ids, 0-padded (ragged -> dense)."""
        return self.encode_tokens(self.tokens(texts), add_start, add_end)

    def encode_tokens(self, tokens, add_start=False, add_end=False):
        """Ragged `[B, (T)]` words (from `tokens`) -> int32 `[B, T]` ids, 0-padded."""
        ids = tf.cast(tf.ragged.map_flat_values(self._ids.lookup, tokens), tf.int32)
        batch = tokens.nrows(out_type=tf.int32)
        if add_start:
            ids = tf.concat([tf.fill([batch, 1], START_ID), ids], axis=1)
        if add_end:
            ids = tf.concat([ids, tf.fill([batch, 1], END_ID)], axis=1)
        return ids.to_tensor(PAD_ID)

    def words_of(self, ids):
        """int `[..., T]` ids -> word strings of the same shape."""
        return tf.gather(self._words, tf.cast(ids, tf.int32))

    def to_json(self):
        return json.dumps({"words": self.words, "max_tokens": self.max_tokens}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text, name=None):
        data = json.loads(text)
        return cls(data["words"], data["max_tokens"], name=name)


class VocabularyMismatch(ValueError):
    """A saved vocabulary disagrees with the config that asks for it."""


def load_or_build_vocabulary(path, texts, max_size, max_tokens, min_count=1, name=None,
                             split=None):
    """The vocabulary saved at `path`, or one built from `texts` and saved there
    (`build_vocabulary`: `split=list` makes each character a token).

    A resumed run must see the ids it trained with, so a saved vocabulary is
    reused, unless it was built for another `max_size` or `max_tokens`:
    then `VocabularyMismatch` names the difference.
    """
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        for key, wanted in (("max_size", max_size), ("max_tokens", max_tokens)):
            saved = data.get(key)
            if saved is not None and saved != wanted:
                raise VocabularyMismatch(
                    f"{path} was built with {key}={saved}, the config asks for {wanted}. Use "
                    f"another workdir, or rerun with --restart to start over.")
        return Vocabulary(data["words"], data["max_tokens"], name=name)
    vocabulary = Vocabulary(build_vocabulary(texts, max_size, min_count, split=split), max_tokens,
                            name=name)
    from training.core import distribution

    if not distribution.is_chief():  # the same words; process 0 saves them
        return vocabulary
    data = {"words": vocabulary.words, "max_tokens": max_tokens, "max_size": max_size}
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
    os.replace(path + ".tmp", path)
    return vocabulary
