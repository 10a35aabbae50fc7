"""Text recognition's data and scores: generated lines (deterministic, every
character's box on its ink), the folder loader's errors, the config's
rules, and the metrics against hand-counted and brute-force answers."""

import itertools

import numpy as np
import pytest
from bad_lines import assert_bad_line_named_then_skipped

from training.ocr import data, lines, metrics

HEIGHT, WIDTH = 32, 160


def ink_mask(line, paper):
    """Pixels that differ from the paper colour by more than the noise."""
    return np.abs(line.image.astype(int) - np.array(paper)).max(axis=-1) > 60


def test_the_same_seed_gives_the_same_lines_and_the_test_split_stands_alone():
    first = lines.generate_split(5, 3, "test", HEIGHT, WIDTH, 12)
    again = lines.generate_split(8, 3, "test", HEIGHT, WIDTH, 12)[:5]
    other = lines.generate_split(5, 4, "test", HEIGHT, WIDTH, 12)
    for a, b in zip(first, again):
        assert a.text == b.text and a.boxes == b.boxes and np.array_equal(a.image, b.image)
    assert [a.text for a in first] != [b.text for b in other]
    train = lines.generate_split(5, 3, "train", HEIGHT, WIDTH, 12)
    assert [a.text for a in first] != [b.text for b in train]


def test_texts_keep_to_the_alphabet_and_the_length():
    rng = np.random.default_rng(0)
    texts = [lines.random_text(rng, 9) for _ in range(500)]
    assert all(1 <= len(t) <= 9 and set(t) <= set(lines.CHARACTERS) for t in texts)
    assert all(t == " ".join(t.split()) for t in texts)  # single spaces, none at the ends
    # Words, numbers and phrases all occur.
    assert any(t.isdigit() for t in texts) and any(t.isalpha() for t in texts)
    assert any(" " in t for t in texts) and any("/" in t or ":" in t for t in texts)


@pytest.mark.parametrize("rotation", [0.0, 2.0])
def test_every_box_holds_its_character_and_the_boxes_hold_all_the_ink(rotation):
    for index in range(40):
        rng = np.random.default_rng([9, index])
        text = lines.random_text(rng, 12)
        line = lines.render_line(text, rng, HEIGHT, WIDTH, noise=0.0, max_rotation=rotation)
        paper = line.image[0, 0] if rotation == 0 else line.image[HEIGHT // 2, 0]
        ink = ink_mask(line, paper)
        inside = np.zeros_like(ink)
        for character, box in zip(line.text, line.boxes):
            if character == " ":
                assert box is None
                continue
            x0, y0, x1, y1 = box
            assert x1 > x0 and y1 > y0, (line.text, character, box)
            patch = ink[max(y0, 0):y1, max(x0, 0):x1]
            if character not in ".,'":  # a dot's few pixels may stay under the threshold
                assert patch.any(), (line.text, character, box)
            inside[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1] = True
        outside = ink & ~inside
        assert outside.sum() <= 2, (line.text, np.argwhere(outside)[:5])


def test_a_long_text_is_drawn_smaller_to_fit():
    rng = np.random.default_rng(1)
    line = lines.render_line("Wmwmwmwmwmwm", rng, HEIGHT, WIDTH, noise=0.0)
    assert all(0 <= box[0] and box[2] <= WIDTH for box in line.boxes)


def test_scores_equal_hand_counts():
    scores = metrics.text_scores(["hello wor1d", "4 2", "abc"], ["hello world", "42", "abd"])
    # Characters: 1 substitution, 1 insertion, 1 substitution over 11 + 2 + 3.
    assert scores["cer"] == pytest.approx(round(100 * 3 / 16, 2))
    # Words: hello right; world, 42 and abd wrong: 1 hit of 4 reference words.
    assert scores["word_accuracy"] == pytest.approx(25.0)
    assert scores["line_accuracy"] == 0.0
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        metrics.text_scores(["a"], ["a", "b"])


def edit_distance(a, b):
    """Levenshtein distance by the textbook dynamic programme."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def test_read_characters_are_a_cheapest_alignment():
    """The pairs match equal characters, keep the order, and leaving them
    out costs exactly the edit distance (brute force over short strings)."""
    alphabet = "ab "
    for n, m in [(3, 2), (4, 4), (2, 5)]:
        for reference in map("".join, itertools.product(alphabet, repeat=n)):
            for hypothesis in map("".join, itertools.product(alphabet, repeat=m)):
                pairs = metrics.read_characters(hypothesis, reference)
                assert all(hypothesis[h] == reference[r] for h, r in pairs)
                assert pairs == sorted(pairs) and len({h for h, _ in pairs}) == len(pairs)
                assert [r for _, r in pairs] == sorted({r for _, r in pairs})
                # A cheapest alignment keeps at least this many equal pairs.
                assert max(n, m) - len(pairs) <= edit_distance(reference, hypothesis) <= \
                    n + m - 2 * len(pairs)


def test_localization_counts_the_columns_on_each_box():
    # 4 columns of 10 pixels over a 40-pixel line; "a b": 'a' on x 2..8, 'b' on x 25..38.
    boxes = [(2, 0, 8, 10), None, (25, 0, 38, 10)]
    attention = np.array([[0.7, 0.1, 0.1, 0.1],   # 'a' -> column 0: on its box
                          [0.0, 1.0, 0.0, 0.0],   # the space: no box, not counted
                          [0.1, 0.6, 0.2, 0.1]])  # 'b' -> column 1: off its box
    records = metrics.localization(attention, "a b", "a b", boxes, 40)
    assert records == [(True, 0.25), (False, 0.5)]
    # A misread character is left out: "a c" reads 'a' right only.
    assert metrics.localization(attention, "a c", "a b", boxes, 40) == [(True, 0.25)]
    assert metrics.summarize_localization(records) == {
        "characters": 2, "hit_rate": 0.5, "hit_chance": 0.375}


def write_png(path, height=20, width=60, value=200):
    from PIL import Image

    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


@pytest.mark.parametrize("line, pattern, named", [
    ("x.png", r"malformed line, expected 'image,caption'", False),
    ("missing.png,abc", r"no such image file", True),
    ("bad.png,abc", r"not a readable image", True),
    ("a.png,", r"empty caption for image 'a.png'", False),
])
def test_bad_lines_name_the_labels_file_and_line(tmp_path, line, pattern, named):
    folder = tmp_path / "lines"
    folder.mkdir()
    good = []
    for index in range(6):
        write_png(folder / f"l{index}.png", value=40 * index)
        good.append(f"l{index}.png,text {index}")
    corpus = assert_bad_line_named_then_skipped(
        folder, "image,text", good, line,
        (lambda path: path.write_bytes(b"not an image")) if line.startswith("bad") else None,
        pattern,
        lambda folder, labels, **keywords: data.load_folder(
            str(folder), labels, (HEIGHT, WIDTH), dev_fraction=0, test_fraction=0, **keywords),
        data.OcrDataError, named)
    assert len(corpus.train) == 6
    example = corpus.train[0]
    assert example.image.shape == (HEIGHT, WIDTH, 3) and example.text == "text 0"
    assert example.boxes is None


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(data.OcrDataError, match=f"{tmp_path / 'nothing'}: no such images"):
        data.load_folder(str(tmp_path / "nothing"), str(tmp_path / "l.csv"), (HEIGHT, WIDTH))


@pytest.mark.parametrize("values, message", [
    (["image_height=30"], "image_height: must be a multiple of 8, received 30"),
    (["image_width=162"], "image_width: must be a multiple of 4, received 162"),
    (["data=folder"], "images_dir: data=folder needs images_dir=DIR and labels_file=FILE"),
    (["max_symbols=4"], "max_symbols"),
    (["data=folder", "images_dir=d", "labels_file=l", "attention_supervision=1"],
     "attention_supervision: needs the character boxes of data=generated"),
])
def test_config_rules_name_the_field(values, message):
    from training.core import config as config_lib
    from training.ocr.config import PRESETS, OcrConfig

    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load(OcrConfig, PRESETS, "tiny", None, values)


def test_attention_targets_are_each_characters_share_of_the_columns():
    from training.core.text import SPECIAL_TOKENS, Vocabulary
    from training.ocr import train as train_lib

    # 4 columns of 10 pixels; "a b": 'a' on x 5..20, 'b' on x 30..40.
    example = data.LineExample(np.zeros((8, 40, 3), np.uint8), "a b",
                               boxes=((5, 0, 20, 8), None, (30, 0, 40, 8)))
    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + ["a", " ", "b"], 8)
    images, targets_in, targets_out, extras = train_lib.encode_examples(
        [example], vocabulary, image_width=40, columns=4)
    np.testing.assert_array_equal(targets_out[0], [4, 5, 6, 3])
    np.testing.assert_allclose(extras[0]["attention_target"], [
        [0.5, 1.0, 0.0, 0.0],   # 'a': half of column 0, all of column 1
        [0.0, 0.0, 0.0, 0.0],   # the space: no box, not supervised
        [0.0, 0.0, 0.0, 1.0],   # 'b'
        [0.0, 0.0, 0.0, 0.0],   # the end token
    ])
    # Without columns, three lists.
    assert len(train_lib.encode_examples([example], vocabulary)) == 3
