"""Evaluation every task shares: run an export signature over a list in
batches, write hypotheses, score text against one or more references."""

import dataclasses
import json
import os
import time

import numpy as np
import sacrebleu
import tensorflow as tf


def run_in_batches(signature_fn, inputs, batch_size, progress=True, unit_name="example"):
    """Runs an exported signature over `inputs` (a list), `batch_size` at a time.

    Returns one dict of numpy values per input (each output's row).
    """
    import keras

    bar = keras.utils.Progbar(len(inputs), unit_name=unit_name) if progress else None
    results = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size]
        output = {k: v.numpy() for k, v in signature_fn(tf.constant(batch)).items()}
        for i in range(len(batch)):
            results.append({k: v[i] for k, v in output.items()})
        if bar:
            bar.add(len(batch))
    return results


def best_text(result):
    """The text of one row of a greedy (`text` a string) or beam (`text [N]`,
    best first) output."""
    text = result["text"]
    if isinstance(text, np.ndarray):
        text = text[0]
    return text.decode("utf-8")


def score_text(hypotheses, references):
    """Corpus BLEU and chrF with sacrebleu, lowercased and cased.

    Args:
        hypotheses: N strings.
        references: N strings, or N lists of one or more strings (rows may
            have different numbers of references).

    Returns:
        `{"bleu", "chrf", "bleu_cased", "chrf_cased"}` floats and the
        `bleu_signature` / `chrf_signature` of the lowercased scores.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    rows = [[r] if isinstance(r, str) else list(r) for r in references]
    streams = [[row[i] if i < len(row) else None for row in rows]
               for i in range(max((len(row) for row in rows), default=1))]
    scores = {}
    for suffix, lowercase in (("", True), ("_cased", False)):
        bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
        chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
        scores["bleu" + suffix] = round(bleu.corpus_score(hypotheses, streams).score, 2)
        scores["chrf" + suffix] = round(chrf.corpus_score(hypotheses, streams).score, 2)
        if lowercase:
            scores["bleu_signature"] = str(bleu.get_signature())
            scores["chrf_signature"] = str(chrf.get_signature())
    return scores


def write_lines(path, lines):
    """One line per item (newlines inside an item become spaces)."""
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line.replace("\n", " ") + "\n")
    return path


def finish_report(report, fit_result, export_path, workdir, config, started, **extra):
    """Adds what every task reports (training steps and seconds, the export,
    the config, the total time) to `report` and writes `workdir/report.json`."""
    report.update({
        "training": {"steps": fit_result.steps, "seconds": fit_result.train_seconds,
                     "stopped_by": fit_result.stopped_by},
        **extra,
        "export": export_path,
        "workdir": workdir,
        "config": dataclasses.asdict(config),
        "total_seconds": round(time.monotonic() - started, 1),
    })
    with open(os.path.join(workdir, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False, default=float)
    return report
