"""Two faults of a weak translator that BLEU hides: outputs that loop
(a word pair written three times or more) and source words copied into
the output where the reference translates them.

A word pair is two adjacent lowercased words as written between spaces
(so ", y" is no pair: Bible verses chain clauses that way); whether a
reference keeps a copied word compares sacrebleu's 13a tokens, lowercased.

Example:

    >>> looping_outputs(["de la tierra de la tierra de la", "y dijo"])
    1
    >>> copied_words([{"token_ids": np.array([5, 1, 1, 7]),
    ...                "tokens": np.array([b"el", b"Moses", b"", b"."]), "length": np.array(4)}],
    ...              ["Moisés dijo ."])
    {'copied': 1, 'copied_kept': 0, 'outputs_with_copies': 1, 'examples': ['Moses'], 'left_out': 1}
"""

import collections

import numpy as np
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from training.core.text import UNK_ID

_TOKENIZE = Tokenizer13a()


def words(text):
    """`text`'s lowercased 13a tokens."""
    return _TOKENIZE(text.lower()).split()


def repeats_a_pair(text, times=3):
    """Whether some pair of adjacent words occurs `times` times or more in `text`."""
    tokens = text.lower().split()
    pairs = collections.Counter(zip(tokens, tokens[1:]))
    return bool(pairs) and max(pairs.values()) >= times


def looping_outputs(texts, times=3):
    """How many of `texts` repeat a pair of adjacent words `times` times or more."""
    return sum(repeats_a_pair(text, times) for text in texts)


def copied_words(results, references, examples=10):
    """Output words the translator copied from its source: the words written
    where the model chose `[UNK]` (the export writes the most attended
    source word there, or nothing: `unknown_words`).

    Args:
        results: One dict of numpy values per sentence, as
            `training.core.evaluation.run_in_batches` gives them: `token_ids
            [T]`, `tokens [T]` (bytes) and `length []`; a beam output's
            (`[N, T]`, `[N, T]`, `[N]`) best hypothesis is taken.
        references: One reference string per sentence.
        examples: How many copied words (the first, in order) to return.

    Returns:
        `{"copied", "copied_kept", "outputs_with_copies", "examples",
        "left_out"}`: the copied words; those the reference writes too
        (names, numbers, which a reader wants kept); the sentences with at
        least one copy; the first `examples` copied words as written; the
        `[UNK]` the export wrote as nothing.
    """
    if len(results) != len(references):
        raise ValueError(f"{len(results)} results but {len(references)} references")
    copied = kept = outputs = left_out = 0
    shown = []
    for result, reference in zip(results, references):
        ids, tokens, length = (np.asarray(result[key]) for key in ("token_ids", "tokens", "length"))
        if length.ndim:  # beam: [N] lengths, [N, T] ids and tokens, best first
            ids, tokens, length = ids[0], tokens[0], length[0]
        reference_words = set(words(reference))
        row = [token.decode("utf-8") for token, token_id in
               zip(tokens[: int(length)], ids[: int(length)]) if token_id == UNK_ID]
        left_out += row.count("")
        row = [word for word in row if word]
        copied += len(row)
        kept += sum(bool(words(word)) and set(words(word)) <= reference_words for word in row)
        outputs += bool(row)
        shown += row[: max(examples - len(shown), 0)]
    return {"copied": copied, "copied_kept": kept, "outputs_with_copies": outputs,
            "examples": shown, "left_out": left_out}
