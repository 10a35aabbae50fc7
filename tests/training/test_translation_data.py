"""Corpus loaders: TSV/CSV files, aligned files, the bundled corpus format,
tensorflow-datasets, the hash split and the size check.

Every malformed input must raise `CorpusError` naming the file and the line
(or be skipped and counted with `skip_bad_lines=True`).
"""

import gzip
import os
import random

import pytest

from training.translation import data
from training.translation.data import CorpusError

HEADER = "reference\tsplit\tenglish\tspanish\n"


def write_bytes(path, content):
    path.write_bytes(content)
    return str(path)


def numbered_pairs(count, prefix="w"):
    """Distinct, non-empty (source, target) pairs."""
    return [(f"{prefix} source {i} .", f"{prefix} destino {i} .") for i in range(count)]


def bundled_rows(train=120, dev=5, test=6):
    """Rows of the bundled format, with the English and Spanish texts we expect back."""
    rows = []
    for split, count in (("train", train), ("dev", dev), ("test", test)):
        for i in range(count):
            rows.append((f"GEN {split} {i}", split, f"English {split} {i}.",
                         f"Español {split} {i}."))
    return rows


def write_bundled(path, rows, header=HEADER):
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write(header)
        for row in rows:
            handle.write("\t".join(row) + "\n")
    return str(path)


# ------------------------------------------------------------ pairs files
def test_tsv_pairs_strip_fields_bom_and_crlf(tmp_path):
    path = write_bytes(
        tmp_path / "pairs.tsv",
        "\ufeffHello world.\tHola mundo.\r\n"
        "  Good night  \t  Buenas noches  \n"
        "Three\tTres\textra column ignored\n"
        "Ñandú, sí.\t¿Dónde está?\n".encode("utf-8"),
    )
    pairs, skipped = data.read_pairs_file(path)
    assert pairs == [
        ("Hello world.", "Hola mundo."),
        ("Good night", "Buenas noches"),
        ("Three", "Tres"),
        ("Ñandú, sí.", "¿Dónde está?"),
    ]
    assert skipped == 0


def test_gzipped_tsv(tmp_path):
    path = str(tmp_path / "pairs.tsv.gz")
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("one\tuno\ntwo\tdos\n")
    assert data.read_pairs_file(path) == ([("one", "uno"), ("two", "dos")], 0)


def test_csv_with_quoted_commas_and_quotes(tmp_path):
    path = write_bytes(
        tmp_path / "pairs.csv",
        b'"Hello, world",Hola mundo\n'
        b'plain,simple\n'
        b'"He said ""yes"", then left","Dijo ""s\xc3\xad"", y se fue"\n',
    )
    pairs, skipped = data.read_pairs_file(path)
    assert pairs == [
        ("Hello, world", "Hola mundo"),
        ("plain", "simple"),
        ('He said "yes", then left', 'Dijo "sí", y se fue'),
    ]
    assert skipped == 0


def test_csv_columns_can_be_chosen(tmp_path):
    path = write_bytes(tmp_path / "three.csv", b"1,uno,one\n2,dos,two\n")
    pairs, _ = data.read_pairs_file(path, source_column=2, target_column=1)
    assert pairs == [("one", "uno"), ("two", "dos")]


@pytest.mark.parametrize(
    "name, content, bad_line, words",
    [
        ("cols.tsv", b"a\tb\nonly one column\nc\td\n", 2, "columns"),
        ("cols.csv", b"a,b\nc,d\nno comma here\n", 3, "columns"),
        ("empty_target.tsv", b"a\tb\nsource only\t   \n", 2, "empty target"),
        ("empty_source.tsv", b"a\tb\nc\td\ne\tf\n\tobjetivo\n", 4, "empty source"),
        ("bytes.tsv", b"a\tb\n\xff\xfe bad\tmalo\nc\td\n", 2, "UTF-8"),
    ],
)
def test_bad_line_names_file_and_line_or_is_skipped(tmp_path, name, content, bad_line, words):
    path = write_bytes(tmp_path / name, content)
    with pytest.raises(CorpusError) as error:
        data.read_pairs_file(path)
    message = str(error.value)
    assert f"{path}:{bad_line}:" in message
    assert words in message

    good = [line for i, line in enumerate(content.split(b"\n")[:-1], start=1) if i != bad_line]
    pairs, skipped = data.read_pairs_file(path, skip_bad_lines=True)
    assert skipped == 1
    assert len(pairs) == len(good)


def test_several_bad_lines_are_all_counted(tmp_path):
    path = write_bytes(
        tmp_path / "mixed.tsv",
        b"a\tb\nnothing\n\xc3\x28\tx\nc\t\nd\te\n",
    )
    pairs, skipped = data.read_pairs_file(path, skip_bad_lines=True)
    assert pairs == [("a", "b"), ("d", "e")]
    assert skipped == 3


def test_missing_file_is_named(tmp_path):
    path = str(tmp_path / "does_not_exist.tsv")
    for skip in (False, True):
        with pytest.raises(CorpusError, match="does_not_exist.tsv"):
            data.read_pairs_file(path, skip_bad_lines=skip)
    with pytest.raises(CorpusError, match="missing_target.txt"):
        data.read_aligned_files(write_bytes(tmp_path / "s.txt", b"a\n"),
                                str(tmp_path / "missing_target.txt"))


# ---------------------------------------------------------- aligned files
def test_aligned_files(tmp_path):
    source = write_bytes(tmp_path / "src.txt", "Hello.\r\nHow are you?\n  Bye  \n".encode())
    target = write_bytes(tmp_path / "tgt.txt", "Hola.\r\n¿Cómo estás?\nAdiós\n".encode())
    assert data.read_aligned_files(source, target) == (
        [("Hello.", "Hola."), ("How are you?", "¿Cómo estás?"), ("Bye", "Adiós")], 0)


def test_aligned_files_line_count_mismatch(tmp_path):
    source = write_bytes(tmp_path / "src.txt", b"a\nb\nc\n")
    target = write_bytes(tmp_path / "tgt.txt", b"x\ny\n")
    with pytest.raises(CorpusError) as error:
        data.read_aligned_files(source, target)
    message = str(error.value)
    assert source in message and target in message
    assert "3" in message and "2" in message


@pytest.mark.parametrize("bad_side", ["source", "target"])
def test_aligned_files_empty_line_names_the_right_file(tmp_path, bad_side):
    lines = {"source": [b"a", b"b", b"c"], "target": [b"x", b"y", b"z"]}
    lines[bad_side][1] = b"   "
    source = write_bytes(tmp_path / "src.txt", b"\n".join(lines["source"]) + b"\n")
    target = write_bytes(tmp_path / "tgt.txt", b"\n".join(lines["target"]) + b"\n")
    bad_path = source if bad_side == "source" else target
    with pytest.raises(CorpusError) as error:
        data.read_aligned_files(source, target)
    assert f"{bad_path}:2:" in str(error.value)
    assert data.read_aligned_files(source, target, skip_bad_lines=True) == (
        [("a", "x"), ("c", "z")], 1)


def test_aligned_files_undecodable_line(tmp_path):
    source = write_bytes(tmp_path / "src.txt", b"a\nb\n")
    target = write_bytes(tmp_path / "tgt.txt", b"x\n\x80\x81\n")
    with pytest.raises(CorpusError) as error:
        data.read_aligned_files(source, target)
    assert f"{target}:2:" in str(error.value)
    assert "UTF-8" in str(error.value)
    assert data.read_aligned_files(source, target, skip_bad_lines=True) == ([("a", "x")], 1)


# ------------------------------------------------------------- user corpus
def test_user_corpus_from_tsv_and_aligned_files_agree(tmp_path):
    pairs = numbered_pairs(400)
    tsv = tmp_path / "all.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    (tmp_path / "s.txt").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (tmp_path / "t.txt").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")

    one = data.load_user_corpus(str(tsv))
    two = data.load_user_corpus([str(tmp_path / "s.txt"), str(tmp_path / "t.txt")])
    assert (one.train, one.dev, one.test) == (two.train, two.dev, two.test)
    assert sorted(one.train + one.dev + one.test) == sorted(pairs)
    assert one.test and one.dev and len(one.train) >= 300
    assert str(tsv) in one.summary()


def test_user_corpus_counts_skipped_lines(tmp_path):
    pairs = numbered_pairs(300)
    lines = [f"{s}\t{t}\n".encode() for s, t in pairs]
    lines[10] = b"broken line without a tab\n"
    lines[20] = b"\xff\xff\tbad bytes\n"
    path = write_bytes(tmp_path / "c.tsv", b"".join(lines))
    with pytest.raises(CorpusError, match=f"{path}:11:"):
        data.load_user_corpus(path)
    corpus = data.load_user_corpus(path, skip_bad_lines=True)
    assert corpus.skipped == 2
    assert len(corpus.train) + len(corpus.dev) + len(corpus.test) == 298
    assert "2 bad lines skipped" in corpus.summary()


@pytest.mark.parametrize("count", [0, 1, 20])
def test_tiny_or_empty_corpus_is_refused(tmp_path, count):
    path = tmp_path / "small.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in numbered_pairs(count)), encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        data.load_user_corpus(str(path))
    message = str(error.value)
    assert str(path) in message
    assert f"at least {data.MIN_TRAIN_PAIRS}" in message


def test_check_size_refuses_empty_dev_or_test():
    pairs = numbered_pairs(150)
    ok = data.ParallelCorpus(pairs[:100], pairs[100:110], pairs[110:120], description="ok")
    assert data.check_size(ok) is ok
    for dev, test in ((pairs[100:110], []), ([], pairs[110:120])):
        with pytest.raises(CorpusError, match="empty dev or test"):
            data.check_size(data.ParallelCorpus(pairs[:100], dev, test, description="x"))
    with pytest.raises(CorpusError, match="99 training pairs"):
        data.check_size(data.ParallelCorpus(pairs[:99], pairs[100:110], pairs[110:120]))


def test_wrong_number_of_paths(tmp_path):
    with pytest.raises(CorpusError, match="one TSV/CSV file or two"):
        data.load_user_corpus(["a", "b", "c"])


# ----------------------------------------------------------- hash split
def test_split_by_hash_is_deterministic_disjoint_and_complete():
    rng = random.Random(0)
    pairs = numbered_pairs(5000, prefix="split")
    first = data.split_by_hash(pairs, 0.1, 0.05)
    shuffled = pairs[:]
    rng.shuffle(shuffled)
    second = data.split_by_hash(shuffled, 0.1, 0.05)
    for a, b in ((first.train, second.train), (first.dev, second.dev), (first.test, second.test)):
        assert set(a) == set(b)  # membership does not depend on order or on the run
    train, dev, test = set(first.train), set(first.dev), set(first.test)
    assert not train & dev and not train & test and not dev & test
    assert train | dev | test == set(pairs)
    assert len(first.train) + len(first.dev) + len(first.test) == len(pairs)
    # The fractions are what was asked, within sampling noise (5000 pairs).
    assert abs(len(test) / 5000 - 0.05) < 0.015
    assert abs(len(dev) / 5000 - 0.10) < 0.02


def test_split_by_hash_keeps_duplicates_together():
    pairs = numbered_pairs(300) * 3
    corpus = data.split_by_hash(pairs, 0.2, 0.2)
    for split in (corpus.train, corpus.dev, corpus.test):
        for pair in split:
            assert split.count(pair) == 3


def test_split_fractions_zero_gives_everything_to_train():
    pairs = numbered_pairs(50)
    corpus = data.split_by_hash(pairs, 0.0, 0.0)
    assert corpus.train == pairs and corpus.dev == [] and corpus.test == []


# ---------------------------------------------------------- bundled format
def test_bundled_format_both_directions(tmp_path):
    rows = bundled_rows()
    path = write_bundled(tmp_path / "small.en-es.tsv.gz", rows)
    en_es = data.load_bundled("en-es", path=path)
    es_en = data.load_bundled("es-en", path=path)
    for corpus, split in ((en_es, "train"), (en_es, "dev"), (en_es, "test")):
        expected = [(r[2], r[3]) for r in rows if r[1] == split]
        assert getattr(corpus, split) == expected
        assert getattr(es_en, split) == [(t, s) for s, t in expected]
    assert (en_es.source_language, en_es.target_language) == ("en", "es")
    assert (es_en.source_language, es_en.target_language) == ("es", "en")


@pytest.mark.parametrize("direction", ["en-fr", "es", "en-en", ""])
def test_bundled_bad_direction(tmp_path, direction):
    path = write_bundled(tmp_path / "b.tsv.gz", bundled_rows())
    with pytest.raises(ValueError, match="direction"):
        data.load_bundled(direction, path=path)


def test_bundled_bad_header_names_file_and_line(tmp_path):
    path = write_bundled(tmp_path / "b.tsv.gz", bundled_rows(),
                         header="reference\tenglish\tspanish\tsplit\n")
    with pytest.raises(CorpusError) as error:
        data.load_bundled(path=path)
    assert f"{path}:1:" in str(error.value)
    assert "header" in str(error.value)


@pytest.mark.parametrize("bad_row, why", [
    (("GEN 9", "train", "only english"), "three columns"),
    (("GEN 9", "validation", "Hello.", "Hola."), "unknown split"),
])
def test_bundled_malformed_line_names_file_and_line(tmp_path, bad_row, why):
    rows = bundled_rows()
    rows.insert(6, bad_row)  # line 8 of the file: header is line 1
    path = write_bundled(tmp_path / "b.tsv.gz", rows)
    with pytest.raises(CorpusError, match=f"{path}:8:"):
        data.load_bundled(path=path)


def test_bundled_format_too_small_is_refused(tmp_path):
    path = write_bundled(tmp_path / "b.tsv.gz", bundled_rows(train=30))
    with pytest.raises(CorpusError, match="at least"):
        data.load_bundled(path=path)


def test_real_bundled_corpus():
    # The corpus ships with the package: a missing file is a packaging failure.
    path = data.bundled_corpus_path()
    assert os.path.exists(path), path
    en_es = data.load_bundled("en-es")
    es_en = data.load_bundled("es-en")
    assert len(en_es.train) > len(en_es.dev) > 0 and len(en_es.test) > 0
    for split in ("train", "dev", "test"):
        pairs = getattr(en_es, split)
        assert getattr(es_en, split) == [(t, s) for s, t in pairs]
        assert all(s.strip() and t.strip() for s, t in pairs)
    # The fixed split has no verse in two splits.
    assert not set(en_es.test) & set(en_es.train)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        assert handle.readline() == HEADER


# ------------------------------------------------------ tensorflow-datasets
def test_tfds_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds
    name = "ted_hrlr_translate/pt_to_en"
    with tfds.testing.mock_data(num_examples=120):
        corpus = data.load_tfds(name, data_dir=str(tmp_path))
        swapped = data.load_tfds(name, data_dir=str(tmp_path), keys=("en", "pt"))
    assert (corpus.source_language, corpus.target_language) == ("pt", "en")
    for split in (corpus.train, corpus.dev, corpus.test):
        assert 0 < len(split) <= 120
        for source, target in split:
            assert isinstance(source, str) and isinstance(target, str)
            assert source and target and source == source.strip()
    assert len(corpus.train) >= data.MIN_TRAIN_PAIRS
    assert (swapped.source_language, swapped.target_language) == ("en", "pt")
    # Mock examples are drawn from a fixed seed: the same pairs, sides swapped.
    assert swapped.train == [(t, s) for s, t in corpus.train]


def test_tfds_too_small_is_refused(tmp_path):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=10):
        with pytest.raises(CorpusError, match="at least"):
            data.load_tfds("ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path))
