"""Temporal localization on generated clips: does a word that names an event
attend to the frames in which the event happens?

The caption scores (BLEU, ROUGE-L, CIDEr-D, METEOR, exact match) every
captioning task shares are in `training.core.caption_metrics`.

Scales: attention shares, hit rates and chance are **fractions, 0..1**.

Chance: attention spread evenly over the clip's T frames puts
`span / T` of its mass in an event's span of `span` frames, and a
most-attended frame drawn uniformly falls in the span with the same
probability; `chance` is that ratio, averaged over the same words.

The span holds the frames that change (`clips.Event`); the frame before it
shows the shape as the caption names it ("a red circle ..."), the frame
after it the outcome. `near_hit` also counts a most-attended frame one
frame outside the span (`near_chance` beside it), and the summary gives
the hit rate of each word role (colour, shape, verb, argument), so a
report can say where the attention lands.

Example: a 6-frame clip whose only event spans frames 2 and 3; the word
"red" attends mostly to frame 3:

>>> from training.video.clips import Event
>>> event = Event("move", "circle", "red", 2, 4, (1, 2, 3, 4), direction="left")
>>> words = "a red circle moves left".split()
>>> word_events(words, [event])
[-1, 0, 0, 0, 0]
>>> attention = np.full((5, 6), 1 / 6)
>>> attention[1] = [0.0, 0.1, 0.2, 0.5, 0.1, 0.1]
>>> record = temporal_localization(attention, word_events(words, [event]), [event], 6,
...                                words=words)[0]
>>> record.position, record.role, round(record.mass, 2), record.hit, round(record.chance, 3)
(1, 'colour', 0.7, 1.0, 0.333)
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from training.video import clips

NO_EVENT = clips.NO_EVENT
_KIND_OF_VERB = {verb: kind for kind, verb in clips.VERBS.items()}
_CONNECTIVES = set(clips.CONNECTIVES)
_ARTICLES = set(clips.ARTICLES)
# Attention weights this close to a row's maximum tie with it (uniform
# attention, the mean-pooled model's, ties everywhere).
_TIE_TOLERANCE = 1e-6


class FrameLocalization(NamedTuple):
    """Where one event word's attention went over the clip's frames.

    Attributes:
        position: the word's index in the caption.
        event_index: the event it names (index into the clip's events).
        mass: share of the word's attention inside the event's frames.
        hit: whether the most-attended frame lies in the event's span; a
            tie between frames counts the share of tied frames inside it.
        chance: span length / clip length: the `mass` of uniform attention
            and the `hit` of a uniformly drawn frame.
        near_hit, near_chance: `hit` and `chance` with the span widened by
            one frame on each side (within the clip).
        role: what the word says of its event: "colour", "shape", "verb"
            or "argument" (the direction or new colour).
    """

    position: int
    event_index: int
    mass: float
    hit: float
    chance: float
    near_hit: float = 0.0
    near_chance: float = 0.0
    role: str = ""


def _phrases(words):
    """`[(first index, words)]` of the caption's event phrases (split at "," and "then")."""
    phrases, current, first = [], [], 0
    for index, word in enumerate(words):
        if word in _CONNECTIVES:
            if current:
                phrases.append((first, current))
            current, first = [], index + 1
        else:
            if not current:
                first = index
            current.append(word)
    if current:
        phrases.append((first, current))
    return phrases


def _describe_phrase(words):
    """`(colour, shape, kind, argument)` of a phrase; None where it says none."""
    colour = next((w for w in words if w in clips.COLOURS), None)
    shape = next((w for w in words if w in clips.SHAPES), None)
    verb_at = next((i for i, w in enumerate(words) if w in _KIND_OF_VERB), None)
    kind = None if verb_at is None else _KIND_OF_VERB[words[verb_at]]
    argument = (words[verb_at + 1] if verb_at is not None and verb_at + 1 < len(words)
                else None)
    return colour, shape, kind, argument


# The roles of the words that tell what happens (see summarize_localization).
ACTION_ROLES = ("verb", "argument")


def word_roles(words):
    """Per word: "colour", "shape", "verb", "argument" or "" (articles,
    connectives), by its place in its event phrase.

    >>> word_roles("a red circle turns blue , then the blue circle appears".split())
    ['', 'colour', 'shape', 'verb', 'argument', '', '', '', 'colour', 'shape', 'verb']
    """
    roles = [""] * len(words)
    for first, phrase in _phrases(words):
        seen_verb = False
        for offset, word in enumerate(phrase):
            if word in _ARTICLES:
                continue
            if seen_verb:
                role = "argument"
            elif word in _KIND_OF_VERB:
                role, seen_verb = "verb", True
            elif word in clips.SHAPES:
                role = "shape"
            elif word in clips.COLOURS:
                role = "colour"
            else:
                role = ""
            roles[first + offset] = role
    return roles


def _event_key(event):
    return (event.colour, event.shape, event.kind, event.direction or event.new_colour)


def word_events(words, events):
    """The event each word of a (generated) caption names, or `NO_EVENT`.

    The caption is cut into phrases at "," and "then". A phrase names the
    first event not yet named whose colour, shape, kind and direction (or
    new colour) it says; else the first such event with the same colour,
    shape and kind; else none. Its colour, shape, verb and argument words
    then name that event; articles, "," and "then" never do. On a clip's
    own caption this gives `VideoClip.word_events`.

    Args:
        words: the caption's words.
        events: the clip's `clips.Event`s, in time order.

    Returns:
        A list of ints, one per word.
    """
    owners = [NO_EVENT] * len(words)
    used = set()
    for first, phrase in _phrases(words):
        colour, shape, kind, argument = _describe_phrase(phrase)
        match = None
        for exact in (True, False):
            match = next((index for index, event in enumerate(events) if index not in used
                          and _event_key(event)[:3] == (colour, shape, kind)
                          and (not exact or _event_key(event)[3] == argument)), None)
            if match is not None:
                break
        if match is None:
            continue
        used.add(match)
        for offset, word in enumerate(phrase):
            if word not in _ARTICLES:
                owners[first + offset] = match
    return owners


def temporal_localization(attention, word_event_indices, events, frame_count, words=None):
    """Scores one caption's attention over frames against its events' spans.

    Args:
        attention: `[T_out, T]` non-negative weights; row t is caption word
            t's attention over the clip's T frames (only the clip's own
            frames, no padding).
        word_event_indices: `[T_out]` ints, the event each word names or
            `NO_EVENT` (`word_events`).
        events: the clip's events (`start_frame`, `end_frame`: a half-open span).
        frame_count: T.
        words: optional, the caption's words, for each record's `role`.

    Returns:
        One `FrameLocalization` per word that names an event, in order.
    """
    attention = np.asarray(attention, np.float64)
    if attention.ndim != 2 or attention.shape[1] != frame_count:
        raise ValueError(f"attention must be [T_out, {frame_count}], got {attention.shape}")
    if len(word_event_indices) != attention.shape[0]:
        raise ValueError(f"{len(word_event_indices)} word events for {attention.shape[0]} "
                         f"attention rows")
    if not np.all(np.isfinite(attention)) or np.any(attention < 0):
        raise ValueError("attention weights must be finite and non-negative")
    roles = word_roles(words) if words is not None else [""] * len(word_event_indices)
    records = []
    for position, index in enumerate(word_event_indices):
        if index == NO_EVENT:
            continue
        event = events[index]
        inside = np.zeros(frame_count, bool)
        inside[event.start_frame:event.end_frame] = True
        near = np.zeros(frame_count, bool)
        near[max(event.start_frame - 1, 0):event.end_frame + 1] = True
        row = attention[position]
        total = row.sum()
        if total <= 0:
            raise ValueError(f"attention row {position} sums to {total}")
        tied = row >= row.max() - _TIE_TOLERANCE
        records.append(FrameLocalization(
            position=position, event_index=int(index), mass=float(row[inside].sum() / total),
            hit=float(inside[tied].mean()), chance=float(inside.mean()),
            near_hit=float(near[tied].mean()), near_chance=float(near.mean()),
            role=roles[position]))
    return records


def summarize_localization(records: Sequence[FrameLocalization]) -> dict:
    """Means over word records: `{"mass", "hit_rate", "chance",
    "near_hit_rate", "near_chance", "words", "hit_rate_by_role"}`
    (fractions 0..1, the number of words, and the hit rate of each role
    present; NaN means with no words), and the same means over the action
    words alone (`"action_mass"`, `"action_hit_rate"`, `"action_chance"`,
    `"action_words"`): the verb and its argument (direction, new colour),
    the words that tell what happens. A colour or a shape names a thing
    that every frame around the event shows too, so its frames are not the
    event's alone.

    >>> summary = summarize_localization([
    ...     FrameLocalization(1, 0, 0.7, 1.0, 0.25, 1.0, 0.5, "colour"),
    ...     FrameLocalization(2, 0, 0.3, 0.0, 0.25, 1.0, 0.5, "shape")])
    >>> {key: summary[key] for key in ("mass", "hit_rate", "chance", "near_hit_rate")}
    {'mass': 0.5, 'hit_rate': 0.5, 'chance': 0.25, 'near_hit_rate': 1.0}
    >>> summary["hit_rate_by_role"], summary["action_words"]
    ({'colour': 1.0, 'shape': 0.0}, 0)
    """
    records = list(records)
    if not records:
        nan = float("nan")
        return {"mass": nan, "hit_rate": nan, "chance": nan, "near_hit_rate": nan,
                "near_chance": nan, "words": 0, "hit_rate_by_role": {},
                "action_mass": nan, "action_hit_rate": nan, "action_chance": nan,
                "action_words": 0}
    by_role = {}
    for record in records:
        if record.role:
            by_role.setdefault(record.role, []).append(record.hit)
    actions = [r for r in records if r.role in ACTION_ROLES]

    def mean(values):
        return float(np.mean(values)) if values else float("nan")

    return {"mass": float(np.mean([r.mass for r in records])),
            "hit_rate": float(np.mean([r.hit for r in records])),
            "chance": float(np.mean([r.chance for r in records])),
            "near_hit_rate": float(np.mean([r.near_hit for r in records])),
            "near_chance": float(np.mean([r.near_chance for r in records])),
            "words": len(records),
            "hit_rate_by_role": {role: float(np.mean(hits)) for role, hits in by_role.items()},
            "action_mass": mean([r.mass for r in actions]),
            "action_hit_rate": mean([r.hit for r in actions]),
            "action_chance": mean([r.chance for r in actions]),
            "action_words": len(actions)}
