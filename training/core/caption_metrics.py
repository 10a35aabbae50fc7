"""Caption metrics every captioning task shares (images, video): BLEU-1..4,
ROUGE-L, CIDEr-D and METEOR with pycocoevalcap, and exact match.

Scales
------
Every score of `caption_scores` is a **percentage, 0..100** -- pycocoevalcap's
value times 100, as captioning papers report them and as
`training.core.evaluation.score_text` reports sacrebleu's BLEU.  CIDEr-D is
0..10 in pycocoevalcap (it already multiplies by 10), so it is 0..1000 here:
a hypothesis equal to its only reference scores 1000.

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
from typing import Sequence

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
