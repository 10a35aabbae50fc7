"""The decoding settings of an export, built once from a task's config."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DecodingOptions:
    """How an exporter's signatures decode; every task's export applies and
    records all of them (`metadata.json`).

    Args:
        beam_width: Beams of the beam signatures (>= 1).
        num_hypotheses: Best hypotheses the beam signatures return, in
            `[1, beam_width]`.
        length_penalty: GNMT length-penalty exponent of the beam score (>= 0).
        no_repeat_ngram_size: When > 0, no output of any signature repeats an
            n-gram of this many tokens; 0 turns the rule off.

    Example:
        >>> DecodingOptions(beam_width=3, num_hypotheses=2, no_repeat_ngram_size=3)
        DecodingOptions(beam_width=3, num_hypotheses=2, length_penalty=0.6, no_repeat_ngram_size=3)
        >>> DecodingOptions(beam_width=2, num_hypotheses=3)
        Traceback (most recent call last):
        ...
        ValueError: num_hypotheses: must be <= beam_width (2), received 3
    """

    beam_width: int = 4
    num_hypotheses: int = 4
    length_penalty: float = 0.6
    no_repeat_ngram_size: int = 0

    def __post_init__(self):
        for name in ("beam_width", "num_hypotheses", "no_repeat_ngram_size"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "length_penalty", float(self.length_penalty))
        if self.beam_width < 1:
            raise ValueError(f"beam_width: must be >= 1, received {self.beam_width}")
        if self.num_hypotheses < 1:
            raise ValueError(f"num_hypotheses: must be >= 1, received {self.num_hypotheses}")
        if self.num_hypotheses > self.beam_width:
            raise ValueError(f"num_hypotheses: must be <= beam_width ({self.beam_width}), "
                             f"received {self.num_hypotheses}")
        if self.length_penalty < 0:
            raise ValueError(f"length_penalty: must be >= 0, received {self.length_penalty}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size: must be >= 0, "
                             f"received {self.no_repeat_ngram_size}")

    @classmethod
    def from_config(cls, config):
        """The options of a task config (any object with the four fields)."""
        return cls(**{field.name: getattr(config, field.name)
                      for field in dataclasses.fields(cls)})
