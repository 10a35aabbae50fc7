"""Caption metrics (BLEU, ROUGE-L, CIDEr-D, METEOR, exact match) and attention
localization on generated scenes.

Scales
------
* `caption_scores`: every score is a **percentage, 0..100** -- pycocoevalcap's
  value times 100, as captioning papers report them and as
  `training.core.evaluation.score_text` reports sacrebleu's BLEU.  CIDEr-D is
  0..10 in pycocoevalcap (it already multiplies by 10), so it is 0..1000 here:
  a hypothesis equal to its only reference scores 1000.
* `localization` / `summarize_localization`: attention shares and hit rates are
  **fractions, 0..1** (they are sums of attention weights, which sum to 1).

Tokenization
------------
Scores depend on tokenization.  Our captions are lowercase words separated by
spaces, and the scorers see exactly those words: the only change made here is
whitespace normalisation (``" ".join(text.split())``).  We do *not* run the
PTB tokenizer of the COCO evaluation (`pycocoevalcap.tokenizer`, which needs
Java and strips punctuation), so numbers computed here on other text are not
comparable with published COCO numbers unless that text is tokenized the same
way.  METEOR applies its own ``-norm`` normalisation inside the jar.

Java
----
METEOR (``meteor-1.5.jar`` shipped with pycocoevalcap) runs in a Java
subprocess.  Java is optional: when ``java`` is not on ``PATH``, or the
subprocess fails, hangs past ``meteor_timeout`` or returns garbage, the other
scores are still returned, the ``"meteor"`` key is left out and ``skipped``
says why.  SPICE is never used (it downloads Stanford CoreNLP models).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from typing import NamedTuple, Sequence

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor import meteor as _meteor_module
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge

DEFAULT_METEOR_TIMEOUT = 300.0
"""Seconds METEOR may take (Java start, paraphrase table, scoring) before it is skipped."""


# ---------------------------------------------------------------- captions
def _normalise(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"captions must be strings, got {type(text).__name__}")
    return " ".join(text.split())


def _prepare(hypotheses, references):
    """Checked, whitespace-normalised ``(gts, res)`` dicts keyed 0..N-1 for pycocoevalcap."""
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses and references must be lists, not a single string")
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference rows")
    if not hypotheses:
        raise ValueError("no captions to score")
    gts, res = {}, {}
    for i, (hypothesis, row) in enumerate(zip(hypotheses, references)):
        row = [row] if isinstance(row, str) else list(row)
        if not row:
            raise ValueError(f"caption {i} has no reference")
        res[i] = [_normalise(hypothesis)]
        gts[i] = [_normalise(reference) for reference in row]
    return gts, res


def _start_meteor() -> Meteor:
    """pycocoevalcap's `Meteor`, its Java started in a session of its own.

    Same command, directory and pipes as ``Meteor.__init__``; the new session
    lets `_stop_meteor` kill a ``java`` wrapper script together with the JVM it
    started.
    """
    process = subprocess.Popen(
        ["java", "-jar", "-Xmx2G", _meteor_module.METEOR_JAR,
         "-", "-", "-stdio", "-l", "en", "-norm"],
        cwd=os.path.dirname(os.path.abspath(_meteor_module.__file__)),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=os.name == "posix")
    scorer = Meteor.__new__(Meteor)
    scorer.meteor_cmd = process.args
    scorer.meteor_p = process
    scorer.lock = threading.Lock()
    return scorer


def _stop_meteor(scorer: Meteor) -> str:
    """Kills the METEOR process (and its session) and returns the end of what it wrote to stderr."""
    process = scorer.meteor_p
    try:  # first: a writer blocked on a full stdin pipe holds the lock that close() needs
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except OSError:  # already gone
        pass
    process.wait()
    try:
        process.stdin.close()
    except OSError:  # broken pipe while flushing
        pass
    detail = b""
    try:  # non-blocking: a process outside the session may still hold the pipe
        os.set_blocking(process.stderr.fileno(), False)
        while len(detail) < 1 << 20:
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break
            detail += chunk
    except (OSError, ValueError):
        pass
    # Meteor.__del__ takes this lock, which compute_score keeps when it raises:
    # give it a free one so garbage collection cannot hang.
    scorer.lock = threading.Lock()
    lines = detail.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:300] if lines else ""


def _meteor(gts, res, timeout):
    """``(score 0..1, None)`` or ``(None, reason)``; never raises, never leaves Java running."""
    if shutil.which("java") is None:
        return None, "java not found on PATH (METEOR needs a Java runtime)"
    try:
        scorer = _start_meteor()
    except Exception as error:  # noqa: BLE001 - e.g. java vanished between which() and Popen
        return None, f"could not start java: {type(error).__name__}: {error}"
    outcome = {}

    def work():
        try:
            outcome["score"] = float(scorer.compute_score(gts, res)[0])
        except Exception as error:  # noqa: BLE001 - broken pipe, EOF, unparsable output
            outcome["error"] = f"{type(error).__name__}: {error}"

    thread = threading.Thread(target=work, name="meteor", daemon=True)
    thread.start()
    thread.join(timeout)
    timed_out = thread.is_alive()
    detail = _stop_meteor(scorer)
    thread.join(5.0)  # EOF on stdout now wakes a reader blocked on the dead process
    if not thread.is_alive():
        scorer.meteor_p.stdout.close()
        scorer.meteor_p.stderr.close()
    if timed_out:
        return None, f"METEOR did not finish within {timeout:g} s"
    if "score" in outcome and np.isfinite(outcome["score"]):
        return outcome["score"], None
    reason = outcome.get("error", f"non-finite score {outcome.get('score')}")
    if detail:
        reason += f"; java said: {detail}"
    return None, f"METEOR failed: {reason}"


def caption_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *,
                   meteor: bool = True, meteor_timeout: float = DEFAULT_METEOR_TIMEOUT) -> dict:
    """Corpus caption scores with pycocoevalcap, as percentages (0..100; CIDEr-D 0..1000).

    Args:
        hypotheses: N strings, one generated caption per image.
        references: N rows, each a list of one or more reference strings for
            the same image (rows may have different lengths; a bare string
            counts as a row of one).
        meteor: ``False`` skips METEOR without starting Java.
        meteor_timeout: seconds before a METEOR run is abandoned (then skipped).

    Returns:
        A dict of floats, each pycocoevalcap's score times 100:

        * ``bleu1`` .. ``bleu4``: corpus BLEU-1..4 (coco-caption's BleuScorer,
          "closest" reference length for the brevity penalty, n-gram counts
          clipped by the most frequent count in any one reference);
        * ``rouge_l``: mean over images of ROUGE-L F (beta 1.2, best LCS
          precision and recall over the references);
        * ``cider_d``: pycocoevalcap's ``Cider``, which is **CIDEr-D** (the
          coco-caption implementation: no stemming, hypothesis tf-idf clipped by
          the reference's, Gaussian length penalty with sigma 6, mean over
          references, times 10).  Its idf comes from the references of the
          corpus scored, so score whole test sets: an n-gram found in every
          image's references weighs 0, and a one-image corpus scores 0;
        * ``meteor``: METEOR 1.5 (``-l en -norm``), only when Java ran it;
        * ``exact_match``: share of hypotheses equal to one of their
          references after whitespace normalisation (case kept);
        * ``skipped``: list of ``"<metric>: <reason>"`` strings, empty when
          nothing was skipped (today only ``"meteor: ..."`` can appear).

    Scores depend on tokenization: captions are split on whitespace only (our
    lowercase word captions), no PTB tokenizer (it needs Java).

    Example:
        >>> scores = caption_scores(
        ...     ["a red circle left of a blue square", "a small green triangle"],
        ...     [["a red circle left of a blue square"],
        ...      ["a large green triangle", "a small green square"]], meteor=False)
        >>> round(scores["bleu1"], 2), round(scores["rouge_l"], 2), scores["exact_match"]
        (100.0, 87.5, 50.0)
        >>> scores["skipped"]
        ['meteor: turned off (meteor=False)']
    """
    gts, res = _prepare(hypotheses, references)
    scores = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n, value in enumerate(bleu, start=1):
        scores[f"bleu{n}"] = 100.0 * float(value)
    scores["rouge_l"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    scores["cider_d"] = 100.0 * float(Cider().compute_score(gts, res)[0])
    skipped = []
    if meteor:
        value, reason = _meteor(gts, res, meteor_timeout)
        if value is None:
            skipped.append(f"meteor: {reason}")
        else:
            scores["meteor"] = 100.0 * value
    else:
        skipped.append("meteor: turned off (meteor=False)")
    matches = [res[i][0] in gts[i] for i in res]
    scores["exact_match"] = 100.0 * sum(matches) / len(matches)
    scores["skipped"] = skipped
    return scores


# ---------------------------------------------------------------- localization
class WordLocalization(NamedTuple):
    """Where one object word's attention went (fractions 0..1).

    Attributes:
        position: the word's index ``t`` in the caption.
        object_index: the object the word names (index into ``boxes``).
        mass: share of the word's attention weight inside the object's box,
            each grid cell counted by the fraction of its area inside the box.
        hit: whether the centre of the most-attended cell (first one on ties)
            lies inside the box (half-open, like the box).
        chance: the box's share of the image area: the expected ``mass`` of
            attention spread uniformly over the image.
        hit_chance: share of grid cells whose centre lies in the box: the
            expected ``hit`` of an argmax drawn uniformly over the cells.
    """

    position: int
    object_index: int
    mass: float
    hit: bool
    chance: float
    hit_chance: float


def _cell_edges(count: int, image_size: int) -> np.ndarray:
    return np.arange(count + 1, dtype=np.float64) * (image_size / count)


def _overlap(lo: np.ndarray, hi: np.ndarray, box_lo: float, box_hi: float) -> np.ndarray:
    """Length of ``[lo, hi) ∩ [box_lo, box_hi)`` for each cell."""
    return np.clip(np.minimum(hi, box_hi) - np.maximum(lo, box_lo), 0.0, None)


def localization(attention, word_objects, boxes, grid_shape, image_size) -> list[WordLocalization]:
    """Scores one caption's attention against the boxes of the objects its words name.

    Numpy only (no Keras or TensorFlow).  The encoder grid of ``H x W`` cells
    tiles the ``image_size x image_size`` image evenly: cell ``(i, j)`` (row
    ``i`` from the top, column ``j`` from the left) is region ``r = i * W + j``
    (row-major, as ``features.reshape(H * W, C)`` of an ``[H, W, C]`` map
    gives) and covers ``x in [j * S / W, (j + 1) * S / W)``,
    ``y in [i * S / H, (i + 1) * S / H)`` with ``S = image_size`` (cell edges
    may fall between pixels when ``S`` is not a multiple of ``H`` or ``W``).

    Args:
        attention: ``[T, R]`` non-negative weights, ``R = H * W``; row ``t`` is
            the attention used for caption word ``t`` (e.g. teacher-forced on
            the caption that ``word_objects`` describes).  Rows are normally
            softmax outputs summing to 1; each row is divided by its sum, so
            ``mass`` is a share of that word's attention either way.
        word_objects: ``[T]`` ints: the index into ``boxes`` of the object word
            ``t`` names, or -1 (`training.captioning.scenes.NO_OBJECT`) for
            words that name none; those words are left out.
        boxes: ``(x0, y0, x1, y1)`` pixel boxes, half-open (pixels
            ``x0 <= x < x1``, ``y0 <= y < y1``), as `SceneObject.box`.
        grid_shape: ``(H, W)``.
        image_size: side ``S`` of the square image, in pixels.

    Returns:
        One `WordLocalization` per word with ``word_objects[t] >= 0``, in
        caption order.

    Example: a 2x2 grid on a 64x64 image; word 1 names object 0 in the
    top-left cell, word 2 names object 1, the right half of the bottom-right cell:

        >>> attention = np.array([[0.25, 0.25, 0.25, 0.25],
        ...                       [0.70, 0.10, 0.10, 0.10],
        ...                       [0.10, 0.10, 0.60, 0.20]])
        >>> boxes = [(0, 0, 32, 32), (48, 32, 64, 64)]
        >>> for record in localization(attention, [-1, 0, 1], boxes, (2, 2), 64):
        ...     print(record.position, record.object_index, round(record.mass, 3),
        ...           record.hit, record.chance)
        1 0 0.7 True 0.25
        2 1 0.1 False 0.125
    """
    grid_h, grid_w = (int(v) for v in grid_shape)
    if grid_h < 1 or grid_w < 1:
        raise ValueError(f"grid_shape must be two positive ints, got {grid_shape}")
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    attention = np.asarray(attention, dtype=np.float64)
    word_objects = np.asarray(word_objects)
    if attention.ndim != 2 or attention.shape[1] != grid_h * grid_w:
        raise ValueError(f"attention must be [T, {grid_h * grid_w}] for a {grid_h}x{grid_w} grid,"
                         f" got shape {attention.shape}")
    if word_objects.ndim != 1 or word_objects.shape[0] != attention.shape[0]:
        raise ValueError(f"word_objects must be [T] with T = {attention.shape[0]} attention rows,"
                         f" got shape {word_objects.shape}")
    if not np.issubdtype(word_objects.dtype, np.integer) and word_objects.size:
        raise TypeError(f"word_objects must be ints, got {word_objects.dtype}")
    if not np.all(np.isfinite(attention)) or np.any(attention < 0):
        raise ValueError("attention weights must be finite and non-negative")
    boxes = [tuple(float(v) for v in box) for box in boxes]
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        if not (0 <= x0 < x1 <= image_size and 0 <= y0 < y1 <= image_size):
            raise ValueError(f"box {k} {boxes[k]} is empty or outside the"
                             f" {image_size}x{image_size} image")

    x_edges, y_edges = _cell_edges(grid_w, image_size), _cell_edges(grid_h, image_size)
    x_centres = (x_edges[:-1] + x_edges[1:]) / 2
    y_centres = (y_edges[:-1] + y_edges[1:]) / 2
    cell_area = (image_size / grid_w) * (image_size / grid_h)
    records = []
    cache = {}
    for t, k in enumerate(word_objects.tolist()):
        if k == -1:
            continue
        if not 0 <= k < len(boxes):
            raise ValueError(f"word {t} names object {k}, but there are {len(boxes)} boxes")
        if k not in cache:
            x0, y0, x1, y1 = boxes[k]
            inside = np.outer(_overlap(y_edges[:-1], y_edges[1:], y0, y1),
                              _overlap(x_edges[:-1], x_edges[1:], x0, x1)) / cell_area
            centre_in = np.outer((y0 <= y_centres) & (y_centres < y1),
                                 (x0 <= x_centres) & (x_centres < x1))
            cache[k] = (inside.reshape(-1), centre_in.reshape(-1),
                        (x1 - x0) * (y1 - y0) / image_size ** 2)
        fraction, centre_in, chance = cache[k]
        row = attention[t]
        total = row.sum()
        if total <= 0:
            raise ValueError(f"attention row {t} sums to {total}; it needs some positive weight")
        records.append(WordLocalization(
            position=t, object_index=int(k), mass=float(row @ fraction / total),
            hit=bool(centre_in[int(np.argmax(row))]), chance=float(chance),
            hit_chance=float(centre_in.mean())))
    return records


def summarize_localization(records: Sequence[WordLocalization]) -> dict:
    """Means over word records (of one caption or of many, concatenated).

    Returns:
        ``{"mass", "hit_rate", "chance", "hit_chance", "words"}``: mean
        `WordLocalization.mass`, share of words with ``hit``, mean ``chance``
        (the mass of uniform attention, to compare ``mass`` with), mean
        ``hit_chance`` (to compare ``hit_rate`` with), all fractions 0..1, and
        the number of words.  With no words the means are NaN.

    Example:
        >>> records = [WordLocalization(1, 0, 0.7, True, 0.25, 0.25),
        ...            WordLocalization(2, 1, 0.1, False, 0.125, 0.0)]
        >>> summary = summarize_localization(records)
        >>> {key: round(value, 4) for key, value in summary.items()}
        {'mass': 0.4, 'hit_rate': 0.5, 'chance': 0.1875, 'hit_chance': 0.125, 'words': 2}
    """
    records = list(records)
    if not records:
        nan = float("nan")
        return {"mass": nan, "hit_rate": nan, "chance": nan, "hit_chance": nan, "words": 0}
    return {
        "mass": float(np.mean([r.mass for r in records])),
        "hit_rate": float(np.mean([r.hit for r in records])),
        "chance": float(np.mean([r.chance for r in records])),
        "hit_chance": float(np.mean([r.hit_chance for r in records])),
        "words": len(records),
    }
