"""Case for lowercase output words, learned from the training targets.

The models read and write lowercase words (smaller vocabularies, shared
statistics). A `Recaser` gives their output the case a reader expects:

- each word takes its most frequent written form in the training targets,
  counted away from sentence starts ("jesús" -> "Jesús", "dios" -> "Dios",
  "y" stays "y");
- the first word of a sentence (the output's first, and any after ". ! ?")
  starts with a capital.

It runs in the graph with stock ops (a `tf.lookup` table and string ops),
so exports keep working on TensorFlow Serving.

Example:

    recaser = Recaser.from_texts(["Y dijo Dios: Sea la luz.", "Y vio Dios la luz."])
    recaser(tf.constant([["y", "dios", "dijo", ".", "la", "luz"]]))
    # --> [["Y", "Dios", "dijo", ".", "La", "luz"]]
"""

import collections

import tensorflow as tf

from training.core.text import tokenize

_SENTENCE_END = (".", "!", "?")
_MAX_CHARS = 1 << 30  # "to the end of the string" for tf.strings.substr


class Recaser(tf.Module):
    """Recases `[R, T]` lowercase words (`""` is padding).

    Args:
        cased_forms: dict lowercase word -> the form to write (only words
            whose form differs from their lowercase).
    """

    def __init__(self, cased_forms, name="recaser"):
        super().__init__(name=name)
        self.cased_forms = dict(cased_forms)
        keys = list(self.cased_forms) or ["\x00"]  # a table cannot be empty
        values = [self.cased_forms.get(k, k) for k in keys]
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)),
            default_value="")

    @classmethod
    def from_texts(cls, texts, batch_size=4096, min_count=1):
        """Counts each word's written forms in `texts` away from sentence
        starts and keeps the most frequent (ties: the lowercase form)."""
        forms = collections.defaultdict(collections.Counter)
        for start in range(0, len(texts), batch_size):
            rows = tokenize(tf.constant(texts[start:start + batch_size]),
                            lowercase=False).to_list()
            for row in rows:
                words = [w.decode("utf-8") for w in row]
                for index, word in enumerate(words):
                    if index == 0 or words[index - 1] in _SENTENCE_END:
                        continue  # capitalized by position, not by the word
                    forms[word.lower()][word] += 1
        cased = {}
        for lower, counter in forms.items():
            if sum(counter.values()) < min_count:
                continue
            best = max(counter.items(), key=lambda item: (item[1], item[0] == lower))[0]
            if best != lower:
                cased[lower] = best
        return cls(cased)

    def __call__(self, words):
        """`[R, T]` words -> `[R, T]` recased (padding stays `""`)."""
        return self.capitalize_sentence_starts(self.written_forms(words))

    def written_forms(self, words):
        """Each word in its most frequent written form (`[R, T]`)."""
        looked_up = self.table.lookup(words)
        return tf.where(looked_up == "", words, looked_up)

    def capitalize_sentence_starts(self, words):
        """A capital at the first word and after ". ! ?" (`[R, T]`); empty
        words (left out) are passed over."""
        index = tf.range(tf.shape(words)[1])
        # [R, T, T]: word j is written and comes before word t.
        earlier = (index[None, None, :] < index[None, :, None]) & (words != "")[:, None, :]
        last = tf.reduce_max(tf.where(earlier, index[None, None, :], -1), axis=-1)  # --> [R, T]
        previous = tf.where(last >= 0, tf.gather(words, tf.maximum(last, 0), batch_dims=1), ".")
        starts = tf.reduce_any(tf.stack([previous == mark for mark in _SENTENCE_END]), axis=0)
        padded = tf.where(words == "", " ", words)  # substr needs one character
        first = tf.strings.substr(padded, 0, 1, unit="UTF8_CHAR")
        rest = tf.strings.substr(padded, 1, _MAX_CHARS, unit="UTF8_CHAR")
        capitalized = tf.strings.join([tf.strings.upper(first, encoding="utf-8"), rest])
        return tf.where(tf.logical_and(starts, words != ""), capitalized, words)
