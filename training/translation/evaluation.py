"""BLEU and chrF with sacrebleu, hypothesis files, attention plots."""

import os

import numpy as np
import sacrebleu
import tensorflow as tf

from keras_attention.plots import attention_text_view, plot_attention


def translate_all(translate_fn, sources, batch_size, beam=False, progress=True):
    """Runs a Translator signature over a list of strings, in batches.

    Returns a list of result dicts of numpy values, one per source (for
    beam search, the best hypothesis first in each field).
    """
    import keras

    bar = keras.utils.Progbar(len(sources), unit_name="sentence") if progress else None
    results = []
    for start in range(0, len(sources), batch_size):
        batch = sources[start:start + batch_size]
        output = {k: v.numpy() for k, v in translate_fn(tf.constant(batch)).items()}
        for i in range(len(batch)):
            results.append({k: v[i] for k, v in output.items()})
        if bar:
            bar.add(len(batch))
    return results


def decoded_text(result, beam=False):
    text = result["translations"][0] if beam else result["translation"]
    return text.decode("utf-8")


def score(hypotheses, references):
    """Corpus BLEU and chrF (sacrebleu, case-insensitive: the model works in
    lowercase). Returns `{"bleu": float, "chrf": float, "bleu_signature":
    str, "chrf_signature": str}`."""
    bleu = sacrebleu.metrics.BLEU(lowercase=True)
    chrf = sacrebleu.metrics.CHRF(lowercase=True)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line.replace("\n", " ") + "\n")
    return path


def draw_examples(results, sources, directory, count, beam=False, prefix="attention"):
    """PNG heat maps and terminal views for the first `count` results.

    Returns `(png_paths, text_views)`.
    """
    os.makedirs(directory, exist_ok=True)
    paths, views = [], []
    for index in range(min(count, len(results))):
        result = results[index]
        if beam:
            tokens, attention, length = result["tokens"][0], result["attention"][0], \
                int(result["lengths"][0])
        else:
            tokens, attention, length = result["tokens"], result["attention"], int(result["length"])
        source_words = [w.decode("utf-8") for w in result["source_tokens"] if w]
        output_words = [w.decode("utf-8") for w in tokens[:length]]
        if not source_words or not output_words:
            continue
        weights = np.asarray(attention)[: len(output_words), : len(source_words)]
        path = os.path.join(directory, f"{prefix}_{index}.png")
        plot_attention(weights, source_words, output_words, path, title=sources[index][:100])
        paths.append(path)
        views.append(attention_text_view(weights, source_words, output_words))
    return paths, views
