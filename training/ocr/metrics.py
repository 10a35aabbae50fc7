"""Text recognition's scores: character error rate, word and line accuracy
(jiwer), and attention localization: whether each correctly read
character's most-attended column lies on its box in the image."""

import numpy as np


def text_scores(hypotheses, references):
    """Character error rate, word accuracy and line accuracy, in percent.

    CER is jiwer's: (substitutions + deletions + insertions) / reference
    characters, over the whole test set. Word accuracy is the share of
    reference words read right in jiwer's word alignment (hits / reference
    words); line accuracy the share of lines read exactly.

    >>> scores = text_scores(["hello wor1d", "42"], ["hello world", "42"])
    >>> scores["cer"], scores["word_accuracy"], scores["line_accuracy"]
    (7.69, 66.67, 50.0)
    """
    import jiwer

    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"need as many hypotheses as references, at least one: received "
                         f"{len(hypotheses)} and {len(references)}")
    characters = jiwer.process_characters(references, hypotheses)
    words = jiwer.process_words(references, hypotheses)
    reference_words = words.hits + words.substitutions + words.deletions
    exact = sum(h == r for h, r in zip(hypotheses, references))
    return {"cer": round(100.0 * characters.cer, 2),
            "word_accuracy": round(100.0 * words.hits / reference_words, 2),
            "line_accuracy": round(100.0 * exact / len(references), 2)}


def read_characters(hypothesis, reference):
    """`(hypothesis index, reference index)` of every character read right:
    the equal runs of the Levenshtein alignment (rapidfuzz)."""
    from rapidfuzz.distance import Levenshtein

    pairs = []
    for tag, ref_start, ref_end, hyp_start, _ in Levenshtein.opcodes(reference, hypothesis):
        if tag == "equal":
            pairs += [(hyp_start + k, ref_start + k) for k in range(ref_end - ref_start)]
    return pairs


def column_spans(columns, image_width):
    """`[columns, 2]` pixel spans `[x0, x1)` of the encoder's columns."""
    edges = np.arange(columns + 1) * (image_width / columns)
    return np.stack([edges[:-1], edges[1:]], axis=1)


def localization(attention, hypothesis, reference, boxes, image_width):
    """One record per character read right that has ink (spaces have no
    box): `(hit, chance)`, `hit` whether its most-attended column overlaps
    the character's box horizontally, `chance` the share of columns that
    do (a column drawn at random).

    attention: `[len(hypothesis), columns]` weights.
    boxes: per reference character `(x0, y0, x1, y1)` or None.
    """
    attention = np.asarray(attention)
    spans = column_spans(attention.shape[1], image_width)
    records = []
    for hyp_index, ref_index in read_characters(hypothesis, reference):
        box = boxes[ref_index]
        if box is None:
            continue
        on_box = (spans[:, 0] < box[2]) & (spans[:, 1] > box[0])
        records.append((bool(on_box[int(np.argmax(attention[hyp_index]))]),
                        float(on_box.mean())))
    return records


def summarize_localization(records):
    """`{"characters", "hit_rate", "hit_chance"}` of `localization` records."""
    if not records:
        return {"characters": 0, "hit_rate": 0.0, "hit_chance": 0.0}
    hits, chances = np.array(records, dtype=float).T
    return {"characters": len(records), "hit_rate": round(float(hits.mean()), 4),
            "hit_chance": round(float(chances.mean()), 4)}
