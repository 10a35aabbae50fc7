"""Caption scores (pycocoevalcap, x100; `training.core.caption_metrics`) and attention
localization on generated scenes (`training.captioning.metrics`).

Expected caption scores are worked out by hand from the metric definitions;
localization is checked on hand-computed grids and against a pixel-level
reference written here (each cell's weight spread over its pixels).
"""

import doctest
import math
import os
import shutil
import stat
import subprocess
import time

import numpy as np
import pytest

from training.captioning import metrics
from training.captioning.metrics import WordLocalization, localization, summarize_localization
from training.core import caption_metrics
from training.core.caption_metrics import caption_scores
from training.captioning.scenes import NO_OBJECT, generate_scenes

CAPTIONS = [
    "a red circle left of a blue square",
    "a small green triangle above a large white square",
    "a yellow square below a red triangle",
]
BLEU_KEYS = ["bleu1", "bleu2", "bleu3", "bleu4"]


def scores_without_meteor(hypotheses, references):
    return caption_scores(hypotheses, references, meteor=False)


def java_runs():
    java = shutil.which("java")
    if java is None:
        return False
    try:
        return subprocess.run([java, "-version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def fake_java(tmp_path, monkeypatch, body):
    """Put a `java` shell script first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "java"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("java") == str(script)


# ------------------------------------------------------------ caption scores
def test_docstring_examples():
    attempted = 0
    for module in (metrics, caption_metrics):
        result = doctest.testmod(module,
                                 optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 8


def test_identical_captions_score_full_marks():
    scores = scores_without_meteor(CAPTIONS, [[c] for c in CAPTIONS])
    for key in BLEU_KEYS + ["rouge_l", "exact_match"]:
        assert scores[key] == pytest.approx(100.0, abs=1e-4), key
    # CIDEr-D: every n-gram vector equals its reference's (cosine 1, no length
    # penalty) and each order has an n-gram not in every image's references,
    # so each image scores 10 (x100 = 1000).
    assert scores["cider_d"] == pytest.approx(1000.0, abs=1e-6)
    assert scores["skipped"] == ["meteor: turned off (meteor=False)"]
    assert "meteor" not in scores


def test_partial_overlap_by_hand():
    # hypothesis "a red circle", reference "a red square": 2 of 3 unigrams,
    # 1 of 2 bigrams, 0 of 1 trigram; equal lengths so no brevity penalty;
    # LCS 2 -> precision = recall = 2/3 -> ROUGE-L F = 2/3.
    scores = scores_without_meteor(["a red circle"], [["a red square"]])
    assert scores["bleu1"] == pytest.approx(100 * 2 / 3, abs=1e-4)
    assert scores["bleu2"] == pytest.approx(100 * math.sqrt(2 / 3 * 1 / 2), abs=1e-4)
    assert scores["bleu3"] < 1e-2
    assert scores["rouge_l"] == pytest.approx(100 * 2 / 3, abs=1e-9)
    assert scores["exact_match"] == 0.0


def test_no_shared_word_scores_zero():
    hypotheses = ["blue square", "red circle", "white triangle"]
    references = [["a red circle"], ["a large white triangle"], ["a small green square"]]
    scores = scores_without_meteor(hypotheses, references)
    for key in BLEU_KEYS:
        assert 0.0 <= scores[key] < 1e-3, key
    assert scores["rouge_l"] == 0.0
    # clipping: min(hypothesis tf-idf, reference tf-idf) is 0 for every n-gram
    assert scores["cider_d"] == 0.0
    assert scores["exact_match"] == 0.0


def test_cider_d_ranks_right_captions_above_wrong_ones():
    references = [[c] for c in CAPTIONS]
    right = scores_without_meteor(CAPTIONS, references)["cider_d"]
    shifted = CAPTIONS[1:] + CAPTIONS[:1]
    wrong = scores_without_meteor(shifted, references)["cider_d"]
    assert right > 0
    assert 0 <= wrong < right / 4


def test_cider_d_of_one_image_is_zero_by_construction():
    # idf = log(#images) - log(df) = log 1 - log 1 = 0 for a one-image corpus
    scores = scores_without_meteor([CAPTIONS[0]], [[CAPTIONS[0]]])
    assert scores["cider_d"] == 0.0
    assert scores["bleu4"] == pytest.approx(100.0, abs=1e-4)


def test_cider_d_length_penalty():
    # Same n-grams as the reference plus a repeated tail: lower than exact.
    references = [[c] for c in CAPTIONS]
    longer = [CAPTIONS[0] + " " + " ".join(CAPTIONS[0].split()[-4:])] + CAPTIONS[1:]
    assert scores_without_meteor(longer, references)["cider_d"] < 1000.0 - 1.0


def test_every_reference_is_used():
    hypothesis = [CAPTIONS[0]]
    one = scores_without_meteor(hypothesis, [[CAPTIONS[1]]])
    two = scores_without_meteor(hypothesis, [[CAPTIONS[1], CAPTIONS[0]]])
    assert one["bleu4"] < 1.0 and one["rouge_l"] < 50.0 and one["exact_match"] == 0.0
    assert two["bleu4"] == pytest.approx(100.0, abs=1e-4)
    assert two["rouge_l"] == pytest.approx(100.0)
    assert two["exact_match"] == 100.0


def test_bleu_clips_by_any_single_reference():
    # "a" occurs twice in the hypothesis but at most once in each reference:
    # 7 of 8 unigrams count.  Closest reference length 5 < 8: no brevity penalty.
    scores = scores_without_meteor([CAPTIONS[0]], [["a red circle", "left of a blue square"]])
    assert scores["bleu1"] == pytest.approx(100 * 7 / 8, abs=1e-4)


def test_exact_match_counts_after_whitespace_normalisation():
    hypotheses = ["  a red   circle ", "a blue square", "a green triangle", "a white square"]
    references = [["a red circle"], ["a small blue square", "a blue square"],
                  ["a green square"], "a white square"]  # a bare string is one reference
    scores = scores_without_meteor(hypotheses, references)
    assert scores["exact_match"] == pytest.approx(75.0)
    # whitespace does not change the other scores either
    clean = scores_without_meteor(["a red circle"] + hypotheses[1:], references)
    for key in BLEU_KEYS + ["rouge_l", "cider_d"]:
        assert scores[key] == pytest.approx(clean[key]), key


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        scores_without_meteor(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="no reference"):
        scores_without_meteor(["a red circle"], [[]])
    with pytest.raises(ValueError, match="no captions"):
        scores_without_meteor([], [])
    with pytest.raises(TypeError, match="must be lists, not a single string"):
        scores_without_meteor("a red circle", [["a red circle"]])


# ------------------------------------------------------------ METEOR
def test_meteor_present_when_java_runs_else_skipped():
    scores = caption_scores([CAPTIONS[0]], [[CAPTIONS[0]]])
    if java_runs():
        assert scores["skipped"] == []
        assert 90.0 < scores["meteor"] <= 100.0
    else:
        assert "meteor" not in scores
        assert len(scores["skipped"]) == 1 and scores["skipped"][0].startswith("meteor: ")
    assert scores["bleu4"] == pytest.approx(100.0, abs=1e-4)


def test_meteor_skipped_without_java(monkeypatch):
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda *args, **kwargs: None)

    def no_java_please():
        raise AssertionError("METEOR started although java is missing")

    monkeypatch.setattr(caption_metrics, "_start_meteor", no_java_please)
    scores = caption_scores(CAPTIONS, [[c] for c in CAPTIONS])
    assert "meteor" not in scores
    assert scores["skipped"] == ["meteor: java not found on PATH (METEOR needs a Java runtime)"]
    assert scores["bleu4"] == pytest.approx(100.0, abs=1e-4)
    assert scores["cider_d"] == pytest.approx(1000.0, abs=1e-6)


def test_meteor_turned_off_starts_no_java(monkeypatch):
    def no_java_please():
        raise AssertionError("METEOR started although meteor=False")

    monkeypatch.setattr(caption_metrics, "_start_meteor", no_java_please)
    scores = caption_scores([CAPTIONS[0]], [[CAPTIONS[0]]], meteor=False)
    assert "meteor" not in scores
    assert scores["skipped"] == ["meteor: turned off (meteor=False)"]


def test_failing_java_is_skipped_with_its_message(tmp_path, monkeypatch):
    fake_java(tmp_path, monkeypatch,
              'echo "Error: Could not create the Java Virtual Machine." >&2\nexit 1')
    scores = caption_scores(CAPTIONS, [[c] for c in CAPTIONS])
    assert "meteor" not in scores
    [reason] = scores["skipped"]
    assert reason.startswith("meteor: METEOR failed: ")
    assert "Could not create the Java Virtual Machine" in reason
    assert scores["rouge_l"] == pytest.approx(100.0)


def process_gone(pid, seconds=10.0):
    """True once `pid` has exited (dead, or a zombie waiting for its parent)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_hanging_java_times_out_and_is_killed(tmp_path, monkeypatch):
    # a wrapper script whose child (standing in for the JVM) holds the pipes
    pid_file = tmp_path / "child.pid"
    fake_java(tmp_path, monkeypatch, f'sleep 60 &\necho $! > "{pid_file}"\nwait')
    start = time.monotonic()
    scores = caption_scores(CAPTIONS, [[c] for c in CAPTIONS], meteor_timeout=1.0)
    assert time.monotonic() - start < 20.0  # did not wait for the 60 s sleep
    assert "meteor" not in scores
    assert scores["skipped"] == ["meteor: METEOR did not finish within 1 s"]
    if os.path.isdir("/proc"):
        assert process_gone(int(pid_file.read_text()))


def test_java_printing_garbage_is_skipped(tmp_path, monkeypatch):
    fake_java(tmp_path, monkeypatch, 'while read line; do echo "not a number"; done')
    scores = caption_scores([CAPTIONS[0]], [[CAPTIONS[0]]], meteor_timeout=30.0)
    assert "meteor" not in scores
    [reason] = scores["skipped"]
    assert reason.startswith("meteor: METEOR failed: ValueError")


# ------------------------------------------------------------ localization
TOP_LEFT = (0, 0, 32, 32)


def one_word(row, box, grid=(2, 2), size=64):
    [record] = localization(np.array([row]), [0], [box], grid, size)
    return record


def test_box_on_one_cell_counts_that_cell():
    record = one_word([0.4, 0.3, 0.2, 0.1], TOP_LEFT)
    assert record.mass == pytest.approx(0.4)
    assert record.chance == pytest.approx(0.25)
    assert record.hit is True
    assert record.hit_chance == pytest.approx(0.25)
    assert (record.position, record.object_index) == (0, 0)


def test_half_a_cell_counts_half_its_weight():
    left_half = one_word([0.4, 0.3, 0.2, 0.1], (0, 0, 16, 32))
    assert left_half.mass == pytest.approx(0.2)
    assert left_half.chance == pytest.approx(16 * 32 / 64 ** 2)
    # the cell centre (16, 16) is not in the half-open box [0, 16) x [0, 32)
    assert left_half.hit is False and left_half.hit_chance == 0.0
    right_half = one_word([0.4, 0.3, 0.2, 0.1], (16, 0, 32, 32))
    assert right_half.mass == pytest.approx(0.2)
    assert right_half.hit is True


def test_box_across_four_cells():
    # a quarter of every cell: mass = (0.4 + 0.3 + 0.2 + 0.1) / 4
    record = one_word([0.4, 0.3, 0.2, 0.1], (16, 16, 48, 48))
    assert record.mass == pytest.approx(0.25)
    assert record.chance == pytest.approx(0.25)
    assert record.hit is True  # argmax cell 0's centre (16, 16) is the box corner


def test_argmax_miss():
    record = one_word([0.1, 0.6, 0.2, 0.1], TOP_LEFT)
    assert record.mass == pytest.approx(0.1)
    assert record.hit is False


def test_rows_are_shares_of_the_word_attention():
    record = one_word([2.0, 0.0, 1.0, 1.0], TOP_LEFT)
    assert record.mass == pytest.approx(0.5)
    assert record.hit is True


def test_regions_are_row_major():
    # 2 rows x 4 columns: region 5 is row 1, column 1: x [16, 32), y [32, 64)
    row = np.full(8, 0.02)
    row[5] = 0.86
    record = one_word(row, (16, 32, 32, 64), grid=(2, 4))
    assert record.mass == pytest.approx(0.86)
    assert record.hit is True
    transposed = one_word(row, (32, 16, 64, 32), grid=(2, 4))
    assert transposed.hit is False and transposed.mass < 0.1


def test_words_without_objects_are_ignored():
    attention = np.array([
        [1.0, 0.0, 0.0, 0.0],
        [0.7, 0.1, 0.1, 0.1],
        [0.0, 0.0, 0.0, 1.0],
        [0.1, 0.1, 0.6, 0.2],
    ])
    boxes = [TOP_LEFT, (32, 32, 64, 64)]
    records = localization(attention, [NO_OBJECT, 0, -1, 1], boxes, (2, 2), 64)
    assert [(r.position, r.object_index) for r in records] == [(1, 0), (3, 1)]
    assert [r.hit for r in records] == [True, False]
    assert [round(r.mass, 6) for r in records] == [0.7, 0.2]
    assert localization(attention, [-1, -1, -1, -1], boxes, (2, 2), 64) == []


def test_summary_by_hand():
    records = [
        WordLocalization(1, 0, 0.7, True, 0.25, 0.25),
        WordLocalization(3, 1, 0.2, False, 0.25, 0.25),
        WordLocalization(4, 1, 0.3, True, 0.125, 0.0),
    ]
    summary = summarize_localization(records)
    assert summary["mass"] == pytest.approx(0.4)
    assert summary["hit_rate"] == pytest.approx(2 / 3)
    assert summary["chance"] == pytest.approx(0.625 / 3)
    assert summary["hit_chance"] == pytest.approx(0.5 / 3)
    assert summary["words"] == 3
    empty = summarize_localization([])
    assert empty["words"] == 0 and math.isnan(empty["mass"]) and math.isnan(empty["hit_rate"])


def pixel_reference(row, box, grid, size):
    """Mass, hit and chance from a subpixel map where each cell's weight is spread evenly."""
    grid_h, grid_w = grid
    lcm = math.lcm(grid_h, grid_w)
    scale = lcm // math.gcd(size, lcm)  # subpixels per pixel so that cells have whole subpixels
    side = size * scale
    cells = np.asarray(row, float).reshape(grid_h, grid_w) / np.sum(row)
    weights = np.repeat(np.repeat(cells, side // grid_h, axis=0), side // grid_w, axis=1)
    weights /= (side // grid_h) * (side // grid_w)
    x0, y0, x1, y1 = (v * scale for v in box)
    mass = weights[y0:y1, x0:x1].sum()
    i, j = divmod(int(np.argmax(row)), grid_w)
    cx, cy = (j + 0.5) * size / grid_w, (i + 0.5) * size / grid_h
    hit = box[0] <= cx < box[2] and box[1] <= cy < box[3]
    chance = (x1 - x0) * (y1 - y0) / side ** 2
    return mass, hit, chance


@pytest.mark.parametrize("grid,size", [((2, 2), 64), ((4, 8), 64), ((8, 8), 64),
                                       ((3, 3), 64), ((5, 7), 48)])
def test_matches_pixel_reference(grid, size, rng):
    regions = grid[0] * grid[1]
    for _ in range(25):
        row = rng.random(regions) ** 4  # peaked, like softmax attention
        x0, x1 = sorted(rng.choice(size + 1, 2, replace=False))
        y0, y1 = sorted(rng.choice(size + 1, 2, replace=False))
        box = (int(x0), int(y0), int(x1), int(y1))
        record = one_word(row, box, grid=grid, size=size)
        mass, hit, chance = pixel_reference(row, box, grid, size)
        assert record.mass == pytest.approx(mass, abs=1e-9)
        assert record.hit == hit
        assert record.chance == pytest.approx(chance)


def test_uniform_attention_scores_chance(rng):
    for grid in [(2, 2), (3, 5), (8, 8)]:
        row = np.full(grid[0] * grid[1], 1.0 / (grid[0] * grid[1]))
        for box in [(0, 0, 64, 64), (5, 9, 20, 61), (33, 0, 34, 1)]:
            record = one_word(row, box, grid=grid)
            assert record.mass == pytest.approx(record.chance), (grid, box)


def test_attention_on_each_object_centre_hits_in_generated_scenes():
    grid, size, cell = (8, 8), 64, 8
    words = 0
    for scene in generate_scenes(20, seed=3):
        attention = np.full((len(scene.word_objects), 64), 1.0 / 64)
        for t, k in enumerate(scene.word_objects):
            if k != NO_OBJECT:
                cx, cy = scene.objects[k].centre
                attention[t] = 0.0
                attention[t, int(cy // cell) * 8 + int(cx // cell)] = 1.0
        boxes = [o.box for o in scene.objects]
        records = localization(attention, scene.word_objects, boxes, grid, size)
        named = [t for t, k in enumerate(scene.word_objects) if k != NO_OBJECT]
        assert [r.position for r in records] == named
        for r in records:
            # the box reaches >= 6 px from its centre on every side (12 px sides),
            # so the cell holding the centre has its own centre in the box and
            # at least 6 x 6 of its 8 x 8 pixels inside
            assert r.hit
            assert r.mass >= 36 / 64 - 1e-9
            assert r.mass > r.chance
        words += len(records)
    assert words >= 20 * 3


def test_localization_rejects_bad_inputs():
    row = [[0.25, 0.25, 0.25, 0.25]]
    with pytest.raises(ValueError, match=r"attention must be \[T, 4\]"):
        localization(np.ones((1, 3)), [0], [TOP_LEFT], (2, 2), 64)
    with pytest.raises(ValueError, match="word_objects must be"):
        localization(row, [0, 0], [TOP_LEFT], (2, 2), 64)
    with pytest.raises(ValueError, match="names object 1"):
        localization(row, [1], [TOP_LEFT], (2, 2), 64)
    with pytest.raises(ValueError, match="outside"):
        localization(row, [0], [(0, 0, 65, 10)], (2, 2), 64)
    with pytest.raises(ValueError, match="non-negative"):
        localization([[0.5, -0.5, 0.5, 0.5]], [0], [TOP_LEFT], (2, 2), 64)
    with pytest.raises(ValueError, match="sums to 0"):
        localization([[0.0, 0.0, 0.0, 0.0]], [0], [TOP_LEFT], (2, 2), 64)
