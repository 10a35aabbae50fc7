"""A captioning task's whole job run once for a test module, keeping the
exporter it made (to call its functions in-process), and the checks of
its report that the image and video captioning tests share."""

import dataclasses
import os

import pytest


def tiny_config(config_class, presets, **values):
    """The task's "tiny" preset with `values` in place."""
    from training.core import config as config_lib

    return dataclasses.replace(config_lib.load(config_class, presets, "tiny"), **values)


def train_and_keep_exporter(train_lib, exporter_name, config, workdir):
    """`train_lib.train_and_evaluate(config, workdir)` with the task's
    exporter class `train_lib.<exporter_name>` recorded as it is made.

    Returns `dict(report, captioner, workdir, config, corpus)`.
    """
    made = []
    exporter_class = getattr(train_lib, exporter_name)

    class Recording(exporter_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    corpus = train_lib.load_corpus(config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_lib, exporter_name, Recording)
        report = train_lib.train_and_evaluate(config, workdir, corpus=corpus,
                                              log=lambda *a: None)
    return dict(report=report, captioner=made[0], workdir=workdir, config=config,
                corpus=corpus)


def texts(output):
    """The decoded `text` of a signature's output: `[B]` (greedy) or `[B, N]` (beam)."""
    text = output["text"].numpy()
    if text.ndim == 1:
        return [t.decode("utf-8") for t in text]
    return [[t.decode("utf-8") for t in row] for row in text]


def read_lines(workdir, name):
    """The lines of a file the evaluation wrote into the workdir."""
    with open(os.path.join(workdir, name), encoding="utf-8") as handle:
        text = handle.read()
    assert text.endswith("\n"), name
    return text[:-1].split("\n")


def exact_match_percent(hypotheses, captions):
    """Percentage of hypotheses that are, word for word, one of their
    example's own captions (`captions`: one list per example)."""
    assert len(hypotheses) == len(captions) > 0
    hits = [hypothesis.split() in [caption.split() for caption in row]
            for hypothesis, row in zip(hypotheses, captions)]
    return 100.0 * sum(hits) / len(hits)


def check_exact_match_recount(report, workdir, captions, beam_width):
    """The report's greedy and beam exact match equal a recount of the
    hypotheses files against the examples' own captions."""
    for name in ("greedy", f"beam{beam_width}"):
        hypotheses = read_lines(workdir, f"test.hypotheses.{name}.txt")
        assert report[name]["exact_match"] == pytest.approx(
            exact_match_percent(hypotheses, captions), abs=1e-9), name


def check_plots_and_examples(report):
    """Every plot is a PNG; each example's attention view has one line per
    caption word, starting with that word."""
    assert report["plots"]
    for path in report["plots"]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n", path
    assert report["examples"]
    for example in report["examples"]:
        lines = example["attention"].split("\n") if example["caption"] else []
        assert [line.split()[0] for line in lines] == example["caption"].split()
