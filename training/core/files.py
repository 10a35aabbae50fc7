"""Reading users' text files line by line, with errors that name the line."""

import csv
import dataclasses
import gzip
import os
import zlib


def read_lines(path, skip_bad_lines, error_class, what="file"):
    """Yields `(line_number, text)` of a UTF-8 file (`.gz` allowed), without
    line ends and a leading byte-order mark.

    An undecodable line raises `error_class("path:line: ...")`, or with
    `skip_bad_lines` yields `(line_number, None)` so the caller counts it.
    A missing file raises `error_class("path: no such <what>")`.
    """
    if not os.path.isfile(path):
        raise error_class(f"{path}: no such {what}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                if skip_bad_lines:
                    yield line_number, None
                    continue
                raise error_class(
                    f"{path}:{line_number}: not valid UTF-8 (byte {error.start}): {raw[:60]!r}"
                ) from None
            text = text.rstrip("\r\n")
            if line_number == 1:
                text = text.lstrip("\ufeff")
            yield line_number, text


def split_by_hash(items, key, dev_fraction, test_fraction):
    """`(train, dev, test)` lists: each item lands by crc32 of `key(item)`,
    so the split never changes between runs and equal keys stay together."""
    train, dev, test = [], [], []
    for item in items:
        bucket = zlib.crc32(key(item).encode("utf-8")) % 10_000 / 10_000
        if bucket < test_fraction:
            test.append(item)
        elif bucket < test_fraction + dev_fraction:
            dev.append(item)
        else:
            train.append(item)
    return train, dev, test


def split_captioned(examples, captions_file, unit, dev_fraction, test_fraction, error_class):
    """`(train, dev, test)` of a captions file's examples, split by
    `split_by_hash` on each example's `source` (its file name).

    Raises ValueError for fractions that are negative or sum to 1 or more,
    and `error_class` naming `captions_file` when a split that should have
    examples has none (`unit`: "images", "clips").
    """
    if not (0 <= dev_fraction and 0 <= test_fraction and dev_fraction + test_fraction < 1):
        raise ValueError(f"dev_fraction and test_fraction must be >= 0 and sum to less than 1, "
                         f"received {dev_fraction} and {test_fraction}")
    splits = split_by_hash(examples, lambda example: example.source, dev_fraction, test_fraction)
    for name, split, fraction in zip(("train", "dev", "test"), splits,
                                     (1.0, dev_fraction, test_fraction)):
        if fraction > 0 and not split:
            raise error_class(
                f"{captions_file}: the {name} split is empty ({len(examples)} {unit}, "
                f"dev_fraction {dev_fraction}, test_fraction {test_fraction}): add {unit}"
                + ("" if name == "train" else f" or raise {name}_fraction"))
    return splits


def read_captioned_files(captions_file, parse_line, is_header, load, error_class, what,
                         skip_bad_lines):
    """The lines of a captions file that name a media file and its caption.

    Blank lines and a header on line 1 are passed over. A line whose
    `parse_line(text) -> (name, caption, problem)` gives a problem, or whose
    file `load(name)` cannot read (it returns the error's text instead of
    the file's value, once per name), raises `error_class("file:line:
    problem: 'text'")`, or with `skip_bad_lines` is skipped and counted.

    Returns `(captions, loaded, skipped)`: name -> [captions] in the order of
    each name's first line, name -> what `load` gave, and the lines skipped.
    """
    captions, loaded, skipped = {}, {}, 0
    for line_number, text in read_lines(captions_file, skip_bad_lines, error_class,
                                        what="captions file"):
        if text is None:
            skipped += 1
            continue
        if not text.strip() or (line_number == 1 and is_header(text)):
            continue
        name, caption, problem = parse_line(text)
        if problem is None:
            if name not in loaded:
                loaded[name] = load(name)
            if isinstance(loaded[name], str):
                problem = f"{what} {name!r}: {loaded[name]}"
        if problem:
            if skip_bad_lines:
                skipped += 1
                continue
            raise error_class(f"{captions_file}:{line_number}: {problem}: {text[:100]!r}")
        captions.setdefault(name, []).append(caption)
    return captions, loaded, skipped


def clean_caption(text):
    """Unquote a CSV-quoted caption and collapse whitespace; '' if empty."""
    text = text.strip()
    if text.startswith('"'):
        text = ",".join(next(csv.reader([text]), []))
    return " ".join(text.split())


def parse_captioned_line(text, unit, tabs=False, clean_name=str.strip):
    """One line of a captions file, `NAME,caption` (or `NAME<TAB>caption`
    when `tabs`): `(name, caption, None)`, or `(name, None, problem)` for a
    malformed line. `unit` names what NAME is in the problems ("image").

    >>> parse_captioned_line("a.png, A red circle.", "image")
    ('a.png', 'A red circle.', None)
    """
    separator = "\t" if tabs and "\t" in text else ","
    name, found, rest = text.partition(separator)
    name = clean_name(name)
    if not found:
        expected = f"'{unit},caption'" + (f" or '{unit}<TAB>caption'" if tabs else "")
        return name, None, f"malformed line, expected {expected}"
    if not name:
        return name, None, f"malformed line, empty {unit} name"
    caption = clean_caption(rest)
    if not caption:
        return name, None, f"empty caption for {unit} {name!r}"
    return name, caption, None


@dataclasses.dataclass
class SplitCorpus:
    """A data set's examples by split, with the count of bad lines skipped
    and where it came from. A task's corpus subclasses it and says what an
    example is (`unit`), which list of each example to count after a
    split's size (`counted`: "captions") and what to add to the summary
    (`details`).

    >>> SplitCorpus([1, 2], [3], [], description="numbers").summary()
    'numbers: train 2 examples, dev 1 examples, test 0 examples'
    """

    train: list
    dev: list
    test: list
    skipped: int = 0
    description: str = ""
    unit = "examples"
    counted = ""

    def split_note(self, split):
        """Words after a split's count: the `counted` lists' total, if any."""
        if not self.counted:
            return ""
        return f" ({sum(len(getattr(example, self.counted)) for example in split)} {self.counted})"

    def details(self):
        """Words after the splits ("" by default)."""
        return ""

    def summary(self):
        """One line: the source, each split's size, details and skipped lines."""
        parts = ", ".join(f"{name} {len(split)} {self.unit}{self.split_note(split)}"
                          for name, split in (("train", self.train), ("dev", self.dev),
                                              ("test", self.test)))
        details = self.details()
        return (f"{self.description}: {parts}" + (f", {details}" if details else "")
                + (f", {self.skipped} bad lines skipped" if self.skipped else ""))
