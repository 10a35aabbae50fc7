"""Parallel corpora: the bundled Bible corpus, user files, tensorflow-datasets.

Every loader returns a `ParallelCorpus`: three lists of `(source, target)`
string pairs (train, dev, test) in the requested direction, plus counts of
what was skipped. Bad input raises `CorpusError` naming the file and line,
unless `skip_bad_lines=True`, which skips and counts it.
"""

import csv
import dataclasses
import gzip
import io
import os
from importlib import resources

from training.core import files
from training.core.files import read_lines

BUNDLED_CORPUS = "bible.en-es.tsv.gz"
LANGUAGES = ("en", "es")
MIN_TRAIN_PAIRS = 100


class CorpusError(ValueError):
    """A corpus file is malformed; the message names the file and line."""


@dataclasses.dataclass
class ParallelCorpus:
    """Sentence pairs by split, as (source, target) tuples."""

    train: list
    dev: list
    test: list
    source_language: str = "src"
    target_language: str = "tgt"
    skipped: int = 0
    description: str = ""

    def summary(self):
        return (
            f"{self.description}: {self.source_language}->{self.target_language}, "
            f"train {len(self.train)}, dev {len(self.dev)}, test {len(self.test)} pairs"
            + (f", {self.skipped} bad lines skipped" if self.skipped else "")
        )


def bundled_corpus_path():
    """Path of the Bible corpus shipped inside the package."""
    return str(resources.files("training.translation").joinpath("data", BUNDLED_CORPUS))


def load_bundled(direction="en-es", path=None):
    """The bundled World English Bible / Reina-Valera 1909 corpus.

    Its split is fixed by the file's `split` column (see data/README.md).

    Args:
        direction: `"en-es"` (default) or `"es-en"`.
        path: Another file in the same format (tests use small ones).
    """
    source, target = _parse_direction(direction)
    path = path or bundled_corpus_path()
    splits = {"train": [], "dev": [], "test": []}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        expected = ["reference", "split", "english", "spanish"]
        if header != expected:
            raise CorpusError(f"{path}:1: expected header {expected}, found {header}")
        for line_number, line in enumerate(handle, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 4 or fields[1] not in splits:
                raise CorpusError(f"{path}:{line_number}: malformed line {line[:80]!r}")
            texts = {"en": fields[2], "es": fields[3]}
            splits[fields[1]].append((texts[source], texts[target]))
    corpus = ParallelCorpus(
        splits["train"], splits["dev"], splits["test"], source, target,
        description=f"bundled Bible corpus {os.path.basename(path)}",
    )
    return check_size(corpus)


def read_pairs_file(path, skip_bad_lines=False, source_column=0, target_column=1):
    """Pairs from a TSV or CSV file (by extension; `.gz` allowed).

    Returns `(pairs, skipped)`. A header line is not detected: remove it.
    """
    plain_name = path[:-3] if path.endswith(".gz") else path
    delimiter = "," if plain_name.endswith(".csv") else "\t"
    pairs, skipped = [], 0
    expected_columns = max(source_column, target_column) + 1
    for line_number, text in _read_lines(path, skip_bad_lines):
        if text is None:
            skipped += 1
            continue
        if delimiter == "\t":
            fields = text.split("\t")
        else:
            fields = next(csv.reader(io.StringIO(text)), [])
        problem = None
        if len(fields) < expected_columns:
            problem = f"expected at least {expected_columns} columns, found {len(fields)}"
        elif not fields[source_column].strip() or not fields[target_column].strip():
            side = "source" if not fields[source_column].strip() else "target"
            problem = f"empty {side} side"
        if problem:
            if skip_bad_lines:
                skipped += 1
                continue
            raise CorpusError(f"{path}:{line_number}: {problem}: {text[:80]!r}")
        pairs.append((fields[source_column].strip(), fields[target_column].strip()))
    return pairs, skipped


def read_aligned_files(source_path, target_path, skip_bad_lines=False):
    """Pairs from two line-aligned text files. Returns `(pairs, skipped)`."""
    source_lines = list(_read_lines(source_path, skip_bad_lines))
    target_lines = list(_read_lines(target_path, skip_bad_lines))
    if len(source_lines) != len(target_lines):
        raise CorpusError(
            f"{source_path} has {len(source_lines)} lines but {target_path} has "
            f"{len(target_lines)}: the files must be line-aligned"
        )
    pairs, skipped = [], 0
    for (line_number, source), (_, target) in zip(source_lines, target_lines):
        if source is None or target is None or not source.strip() or not target.strip():
            if skip_bad_lines:
                skipped += 1
                continue
            which = source_path if source is not None and not source.strip() else target_path
            raise CorpusError(f"{which}:{line_number}: empty line")
        pairs.append((source.strip(), target.strip()))
    return pairs, skipped


def load_user_corpus(paths, skip_bad_lines=False, dev_fraction=0.05, test_fraction=0.05):
    """A user's corpus: one TSV/CSV file, or two aligned text files.

    The split is a stable hash of each pair's text, so it does not change
    between runs; identical pairs always land in the same split.
    """
    if isinstance(paths, str):
        paths = [paths]
    if len(paths) == 1:
        pairs, skipped = read_pairs_file(paths[0], skip_bad_lines)
        description = paths[0]
    elif len(paths) == 2:
        pairs, skipped = read_aligned_files(paths[0], paths[1], skip_bad_lines)
        description = f"{paths[0]} + {paths[1]}"
    else:
        raise CorpusError(f"give one TSV/CSV file or two aligned text files, received {paths}")
    corpus = split_by_hash(pairs, dev_fraction, test_fraction)
    corpus.skipped, corpus.description = skipped, description
    return check_size(corpus)


def load_tfds(name, split_names=("train", "validation", "test"), data_dir=None, keys=None):
    """A tensorflow-datasets translation set, e.g. `ted_hrlr_translate/pt_to_en`.

    Args:
        name: TFDS name with config.
        split_names: The (train, dev, test) split names of that dataset.
        data_dir: TFDS data directory.
        keys: `(source_key, target_key)`; default from the dataset's
            `supervised_keys`.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    # Only with data=tfds, which the user chooses: it needs the data set in
    # data_dir or internet. The default corpus ships with the package, and
    # the tests run this path under tfds.testing.mock_data.
    builder.download_and_prepare()
    if keys is None:
        supervised = builder.info.supervised_keys
        if not supervised:
            raise CorpusError(f"{name} has no supervised_keys: pass keys=(source, target)")
        keys = supervised[:2]
    splits = []
    for split in split_names:
        pairs = []
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            source = example[keys[0]].decode("utf-8", errors="replace").strip()
            target = example[keys[1]].decode("utf-8", errors="replace").strip()
            if source and target:
                pairs.append((source, target))
        splits.append(pairs)
    corpus = ParallelCorpus(*splits, source_language=keys[0], target_language=keys[1],
                            description=f"tfds {name}")
    return check_size(corpus)


def split_by_hash(pairs, dev_fraction, test_fraction):
    """Deterministic split by crc32 of the pair's text."""
    return ParallelCorpus(*files.split_by_hash(pairs, "\t".join, dev_fraction, test_fraction))


def check_size(corpus, minimum=MIN_TRAIN_PAIRS):
    """Refuse corpora too small to train on, with a message."""
    if len(corpus.train) < minimum:
        raise CorpusError(
            f"{corpus.description or 'corpus'} has {len(corpus.train)} training pairs; at least "
            f"{minimum} are needed to train a translation model"
        )
    if not corpus.dev or not corpus.test:
        raise CorpusError(
            f"{corpus.description or 'corpus'} has an empty dev or test split "
            f"(dev {len(corpus.dev)}, test {len(corpus.test)}); add more pairs"
        )
    return corpus


def _parse_direction(direction):
    parts = direction.split("-")
    if len(parts) != 2 or set(parts) != set(LANGUAGES):
        raise ValueError(f"`direction` must be 'en-es' or 'es-en', received {direction!r}")
    return parts[0], parts[1]


def _read_lines(path, skip_bad_lines):
    """Yields `(line_number, text)`; text is None for undecodable lines
    when skipping, else a CorpusError names the line."""
    return read_lines(path, skip_bad_lines, CorpusError)
