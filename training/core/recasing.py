"""Case for lowercase output words, learned from the training targets.

The models read and write lowercase words (smaller vocabularies, shared
statistics). A `Recaser` gives their output the case a reader expects:

- each word takes its most frequent written form in the training targets,
  counted away from sentence starts ("jesús" -> "Jesús", "dios" -> "Dios",
  "y" stays "y"), or, after a word it followed at least
  `min_context_count` times there, its most frequent form after that word
  where that differs ("espíritu santo" -> "Espíritu Santo", "dijo: no"
  -> "dijo: No");
- the first word of a sentence (the output's first, and any after ". ! ?",
  an opening "¿" or "¡" passed over) starts with a capital.

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
_OPENING = ("¿", "¡")  # pass a sentence start on to the word they open
_CONTEXT = "\x00"  # joins a context key: previous word, word
_MAX_CHARS = 1 << 30  # "to the end of the string" for tf.strings.substr


class Recaser(tf.Module):
    """Recases `[R, T]` lowercase words (`""` is padding).

    Args:
        cased_forms: dict lowercase word -> the form to write (only words
            whose form differs from their lowercase).
        context_forms: dict `(previous lowercase word, lowercase word)` ->
            the form to write after that word (only where it differs from
            the word's own form).
    """

    def __init__(self, cased_forms, context_forms=None, name="recaser"):
        super().__init__(name=name)
        self.cased_forms = dict(cased_forms)
        self.context_forms = dict(context_forms or {})
        self.table = _table({word: form for word, form in self.cased_forms.items()})
        self.context_table = _table({previous + _CONTEXT + word: form for (previous, word), form
                                     in self.context_forms.items()})

    @classmethod
    def from_texts(cls, texts, batch_size=4096, min_count=1, min_context_count=5):
        """Counts each word's written forms in `texts` away from sentence
        starts, alone and after each previous word, and keeps the most
        frequent (ties: the lowercase form)."""
        forms = collections.defaultdict(collections.Counter)
        after = collections.defaultdict(collections.Counter)
        for start in range(0, len(texts), batch_size):
            rows = tokenize(tf.constant(texts[start:start + batch_size]),
                            lowercase=False).to_list()
            for row in rows:
                at_start, previous = True, None
                for word in (w.decode("utf-8") for w in row):
                    if word in _OPENING:
                        previous = word
                        continue  # the sentence start passes to the next word
                    if not at_start:  # capitalized by position, not by the word
                        forms[word.lower()][word] += 1
                        after[previous.lower(), word.lower()][word] += 1
                    at_start, previous = word in _SENTENCE_END, word
        cased = {lower: best for lower, counter in forms.items()
                 if sum(counter.values()) >= min_count
                 and (best := _most_frequent(counter, lower)) != lower}
        context = {}
        for (previous, lower), counter in after.items():
            if sum(counter.values()) >= min_context_count:
                best = _most_frequent(counter, lower)
                if best != cased.get(lower, lower):
                    context[previous, lower] = best
        return cls(cased, context)

    def __call__(self, words):
        """`[R, T]` words -> `[R, T]` recased (padding stays `""`)."""
        return self.capitalize_sentence_starts(self.written_forms(words))

    def written_forms(self, words):
        """Each word in its most frequent written form after the word
        before it, else in its own (`[R, T]`)."""
        previous = _previous_words(words, words != "")
        in_context = self.context_table.lookup(tf.strings.join([previous, words], _CONTEXT))
        looked_up = tf.where(in_context == "", self.table.lookup(words), in_context)
        return tf.where(looked_up == "", words, looked_up)

    def capitalize_sentence_starts(self, words):
        """A capital at the first word and after ". ! ?" (`[R, T]`); empty
        words (left out) and an opening "¿" or "¡" are passed over."""
        counted = (words != "") & ~tf.reduce_any(
            tf.stack([words == mark for mark in _OPENING]), axis=0)
        previous = _previous_words(words, counted, missing=".")
        starts = tf.reduce_any(tf.stack([previous == mark for mark in _SENTENCE_END]), axis=0)
        padded = tf.where(words == "", " ", words)  # substr needs one character
        first = tf.strings.substr(padded, 0, 1, unit="UTF8_CHAR")
        rest = tf.strings.substr(padded, 1, _MAX_CHARS, unit="UTF8_CHAR")
        capitalized = tf.strings.join([tf.strings.upper(first, encoding="utf-8"), rest])
        return tf.where(tf.logical_and(starts, words != ""), capitalized, words)


def _table(forms):
    """A string -> string lookup table (`""` for a missing key)."""
    keys = list(forms) or ["\x00"]  # a table cannot be empty: one key that finds ""
    values = [forms.get(key, "") for key in keys]
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)),
        default_value="")


def _most_frequent(counter, lower):
    """The most frequent form in `counter`, ties to the lowercase one."""
    return max(counter.items(), key=lambda item: (item[1], item[0] == lower))[0]


def _previous_words(words, counted, missing=""):
    """`[R, T]`: the last word before each one among those `counted`
    (bool `[R, T]`), `missing` where there is none."""
    index = tf.range(tf.shape(words)[1])
    # [R, T, T]: word j is counted and comes before word t.
    earlier = (index[None, None, :] < index[None, :, None]) & counted[:, None, :]
    last = tf.reduce_max(tf.where(earlier, index[None, None, :], -1), axis=-1)  # --> [R, T]
    return tf.where(last >= 0, tf.gather(words, tf.maximum(last, 0), batch_dims=1), missing)
