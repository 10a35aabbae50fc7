"""Captioning loaders: generated scenes, an image folder with a captions file, COCO.

Every malformed folder input must raise `CaptionDataError` naming the captions
file and line (and the image path for a bad image), or be skipped and counted
with `skip_bad_lines=True`.
"""

import re
import zlib

import numpy as np
import pytest
from bad_lines import assert_bad_line_named_then_skipped
import tensorflow as tf

from training.captioning import data, scenes
from training.core import images
from training.captioning.data import CaptionDataError

SIZE = 16
RED, GREEN, BLUE = (230, 20, 20), (20, 200, 30), (30, 40, 240)
YELLOW, PURPLE, GREY = (240, 220, 20), (150, 30, 170), (200, 200, 200)


def solid(height, width, colour):
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, len(colour))).copy()


def write_image(path, array, fmt=None):
    """Write uint8 [H, W, C] as PNG/JPEG (TensorFlow) or GIF/BMP (PIL), by extension."""
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt == "png":
        path.write_bytes(tf.io.encode_png(array).numpy())
    elif fmt in ("jpg", "jpeg"):
        path.write_bytes(tf.io.encode_jpeg(array, quality=95).numpy())
    else:
        from PIL import Image
        Image.fromarray(array).save(path, format=fmt.upper())
    return path.name


def write_captions(path, lines, header=True):
    text = ("image,caption\n" if header else "") + "".join(line + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return str(path)


def good_folder(tmp_path, count=3):
    """`count` small solid PNGs named good{i}.png, one caption line each."""
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    lines = []
    for i in range(count):
        write_image(images / f"good{i}.png", solid(10, 12, (10 * i, 100, 200)))
        lines.append(f"good{i}.png,a good picture number {i}")
    return images, lines


def mean_colour(image):
    return image.reshape(-1, 3).astype(float).mean(axis=0)


def all_examples(corpus):
    return corpus.train + corpus.dev + corpus.test


# ------------------------------------------------------------ generated scenes
def test_generated_sizes_determinism_and_scene_fields():
    corpus = data.load_generated(5, 2, 3, seed=4, image_size=32)
    again = data.load_generated(5, 2, 3, seed=4, image_size=32)
    other_seed = data.load_generated(5, 2, 3, seed=5, image_size=32)
    assert [len(corpus.train), len(corpus.dev), len(corpus.test)] == [5, 2, 3]
    assert corpus.skipped == 0
    expected = scenes.split_scenes(5, 3, 4, validation_count=2, image_size=32)
    for split, scene_list, again_split in zip(
            (corpus.train, corpus.dev, corpus.test), expected,
            (again.train, again.dev, again.test)):
        for example, scene, repeat in zip(split, scene_list, again_split):
            assert example.image.dtype == np.uint8 and example.image.shape == (32, 32, 3)
            assert np.array_equal(example.image, scene.image)
            assert example.captions == [scene.caption]
            assert example.objects == scene.objects and example.objects
            assert len(example.word_objects) == len(example.captions[0].split(" "))
            assert np.array_equal(repeat.image, example.image)
            assert repeat.captions == example.captions
    assert [e.source for e in corpus.dev] == ["generated/validation/0", "generated/validation/1"]
    assert [e.captions for e in other_seed.train] != [e.captions for e in corpus.train]
    # The test split does not depend on how many training scenes there are.
    bigger = data.load_generated(9, 0, 3, seed=4, image_size=32)
    assert [e.captions for e in bigger.test] == [e.captions for e in corpus.test]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(bigger.test, corpus.test))
    assert "train 5 images (5 captions), dev 2 images (2 captions)" in corpus.summary()
    assert "32x32" in corpus.summary()


def test_generated_noise_and_clutter_change_images_not_captions():
    plain = data.load_generated(4, 0, 0, seed=2, image_size=32)
    noisy = data.load_generated(4, 0, 0, seed=2, image_size=32, noise=0.05, clutter=3)
    assert [e.captions for e in plain.train] == [e.captions for e in noisy.train]
    assert all(not np.array_equal(a.image, b.image) for a, b in zip(plain.train, noisy.train))


# ------------------------------------------------------------ image folder
def test_folder_decodes_every_format_to_rgb_of_the_right_colour(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    halves = np.concatenate([solid(64, 50, RED), solid(64, 50, BLUE)], axis=1)
    names = {
        "red.png": (write_image(images / "red.png", solid(30, 40, RED)), RED, 2),
        "green.jpg": (write_image(images / "green.jpg", solid(50, 50, GREEN)), GREEN, 12),
        "grey.png": (write_image(images / "grey.png", solid(9, 17, GREY[:1])), GREY, 2),
        "rgba.png": (write_image(images / "rgba.png", solid(20, 20, BLUE + (128,))), BLUE, 2),
        "yellow.gif": (write_image(images / "yellow.gif", solid(21, 33, YELLOW)), YELLOW, 6),
        "purple.bmp": (write_image(images / "purple.bmp", solid(5, 7, PURPLE)), PURPLE, 2),
        "halves.png": (write_image(images / "halves.png", halves), None, None),
    }
    captions = write_captions(tmp_path / "captions.txt", [
        "red.png,A red thing .",
        "green.jpg,  a   green   thing ",
        "grey.png,grey",
        "red.png,\"Another red thing, quoted\"",
        "rgba.png,blue with alpha",
        "yellow.gif,a yellow gif",
        "purple.bmp,a tiny purple bitmap",
        "halves.png,red left of blue",
        "red.png,unquoted, with a comma",
    ])
    corpus = data.load_folder(str(images), captions, SIZE, dev_fraction=0, test_fraction=0)
    assert corpus.skipped == 0 and corpus.dev == [] and corpus.test == []
    by_name = {example.source: example for example in corpus.train}
    # One example per image, in the order of each image's first line.
    assert [e.source for e in corpus.train] == list(names)
    for name, (_, colour, tolerance) in names.items():
        image = by_name[name].image
        assert image.dtype == np.uint8 and image.shape == (SIZE, SIZE, 3), name
        assert by_name[name].objects is None and by_name[name].word_objects is None
        if colour is not None:
            np.testing.assert_allclose(mean_colour(image), colour, atol=tolerance, err_msg=name)
    halves_image = by_name["halves.png"].image
    np.testing.assert_allclose(mean_colour(halves_image[:, :SIZE // 2 - 1]), RED, atol=2)
    np.testing.assert_allclose(mean_colour(halves_image[:, SIZE // 2 + 1:]), BLUE, atol=2)
    assert by_name["red.png"].captions == [
        "A red thing .", "Another red thing, quoted", "unquoted, with a comma"]
    assert by_name["green.jpg"].captions == ["a green thing"]
    summary = corpus.summary()
    assert "train 7 images (9 captions)" in summary and f"{SIZE}x{SIZE}" in summary


def test_header_is_detected_only_as_the_first_line(tmp_path):
    images, lines = good_folder(tmp_path, count=2)
    with_header = tmp_path / "with_header.csv"
    with_header.write_bytes(("\ufeffimage,caption\r\n" + "\r\n".join(lines) + "\r\n\r\n")
                            .encode("utf-8"))
    corpus = data.load_folder(str(images), str(with_header), SIZE, dev_fraction=0,
                              test_fraction=0)
    assert corpus.skipped == 0
    assert [e.captions for e in corpus.train] == [["a good picture number 0"],
                                                  ["a good picture number 1"]]
    without = write_captions(tmp_path / "without.csv", lines, header=False)
    plain = data.load_folder(str(images), without, SIZE, dev_fraction=0, test_fraction=0)
    assert [e.captions for e in plain.train] == [e.captions for e in corpus.train]
    # A header anywhere else is a line about a missing image called "image".
    late = write_captions(tmp_path / "late.csv", lines + ["image,caption"], header=False)
    with pytest.raises(CaptionDataError, match=re.escape(f"{late}:3:")):
        data.load_folder(str(images), late, SIZE, dev_fraction=0, test_fraction=0)


def _truncated_png(path):
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    encoded = tf.io.encode_png(noise).numpy()
    path.write_bytes(encoded[: len(encoded) // 2])


def _truncated_jpeg(path):
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    encoded = tf.io.encode_jpeg(noise).numpy()
    path.write_bytes(encoded[: len(encoded) // 2])


def _not_an_image(path):
    path.write_bytes(b"this is a text file, not a JPEG\n" * 4)


def _empty_file(path):
    path.write_bytes(b"")


BAD_LINES = {
    # name: (the caption line, how to write its image or None, message pattern)
    "missing image": ("nowhere.png,a picture that is not there", None, "no such image file"),
    "truncated png": ("cut.png,a cut picture", _truncated_png, "not a readable"),
    "truncated jpeg": ("cut.jpg,a cut photo", _truncated_jpeg, "not a readable"),
    "text named jpg": ("fake.jpg,a fake picture", _not_an_image, "not a readable"),
    "empty image file": ("empty.png,an empty file", _empty_file, "empty file"),
    "empty caption": ("good0.png,   ", None, "empty caption"),
    "quoted empty caption": ('good0.png,""', None, "empty caption"),
    "no comma": ("good0.png a caption without a comma", None, "malformed line"),
    "no image name": (",a caption without an image", None, "empty image name"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_each_bad_line_raises_naming_file_and_line_or_is_skipped(tmp_path, case):
    line, write_bad_image, pattern = BAD_LINES[case]
    images, lines = good_folder(tmp_path, count=3)
    corpus = assert_bad_line_named_then_skipped(
        images, "image,caption", lines, line, write_bad_image, pattern,
        lambda folder, captions, **keywords: data.load_folder(
            str(folder), captions, SIZE, dev_fraction=0, test_fraction=0, **keywords),
        CaptionDataError, named=write_bad_image is not None or case == "missing image")
    assert [e.source for e in corpus.train] == ["good0.png", "good1.png", "good2.png"]
    assert [e.captions for e in corpus.train] == [[f"a good picture number {i}"]
                                                  for i in range(3)]


def test_every_line_of_a_bad_image_is_skipped_and_the_first_is_named(tmp_path):
    images, lines = good_folder(tmp_path, count=2)
    _truncated_png(images / "cut.png")
    captions = write_captions(tmp_path / "captions.txt",
                              ["cut.png,first"] + lines + ["cut.png,second", "cut.png,third"])
    with pytest.raises(CaptionDataError, match=re.escape(f"{captions}:2: image 'cut.png'")):
        data.load_folder(str(images), captions, SIZE, dev_fraction=0, test_fraction=0)
    corpus = data.load_folder(str(images), captions, SIZE, skip_bad_lines=True,
                              dev_fraction=0, test_fraction=0)
    assert corpus.skipped == 3
    assert [e.source for e in corpus.train] == ["good0.png", "good1.png"]


def test_invalid_utf8_line_raises_or_is_skipped(tmp_path):
    images, lines = good_folder(tmp_path, count=2)
    captions = tmp_path / "captions.txt"
    captions.write_bytes(("image,caption\n" + lines[0] + "\n").encode("utf-8")
                         + b"good1.png,caf\xe9\n" + (lines[1] + "\n").encode("utf-8"))
    with pytest.raises(CaptionDataError, match=re.escape(f"{captions}:3: not valid UTF-8")):
        data.load_folder(str(images), str(captions), SIZE, dev_fraction=0, test_fraction=0)
    corpus = data.load_folder(str(images), str(captions), SIZE, skip_bad_lines=True,
                              dev_fraction=0, test_fraction=0)
    assert corpus.skipped == 1 and len(corpus.train) == 2


def test_missing_captions_file_or_folder_and_empty_splits_are_refused(tmp_path):
    images, lines = good_folder(tmp_path, count=1)
    captions = write_captions(tmp_path / "captions.txt", lines)
    with pytest.raises(CaptionDataError, match="no such captions file"):
        data.load_folder(str(images), str(tmp_path / "absent.txt"), SIZE)
    with pytest.raises(CaptionDataError, match="no such images folder"):
        data.load_folder(str(tmp_path / "absent"), captions, SIZE)
    # One image cannot fill a dev and a test split.
    with pytest.raises(CaptionDataError, match="split is empty"):
        data.load_folder(str(images), captions, SIZE)
    only_bad = write_captions(tmp_path / "bad.txt", ["nowhere.png,gone"])
    with pytest.raises(CaptionDataError, match="no usable captioned images"):
        data.load_folder(str(images), only_bad, SIZE, skip_bad_lines=True,
                         dev_fraction=0, test_fraction=0)


def test_split_is_a_stable_hash_of_the_image_name(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    png = tf.io.encode_png(solid(4, 4, RED)).numpy()
    names = [f"photo_{i:03d}.png" for i in range(60)]
    for name in names:
        (images / name).write_bytes(png)
    lines = [f"{name},caption {k} of {name}" for k in range(2) for name in names]
    captions = write_captions(tmp_path / "captions.txt", lines)
    corpus = data.load_folder(str(images), captions, SIZE, dev_fraction=0.2, test_fraction=0.2)
    assert corpus.train and corpus.dev and corpus.test
    assert sorted(e.source for e in all_examples(corpus)) == sorted(names)

    def expected_split(name):
        bucket = zlib.crc32(name.encode("utf-8")) % 10_000 / 10_000
        return "test" if bucket < 0.2 else "dev" if bucket < 0.4 else "train"

    membership = {e.source: split for split in ("train", "dev", "test")
                  for e in getattr(corpus, split)}
    assert membership == {name: expected_split(name) for name in names}
    for example in all_examples(corpus):
        assert example.captions == [f"caption {k} of {example.source}" for k in range(2)]

    # Reordered lines and more images elsewhere do not move any image.
    for extra in range(20):
        (images / f"extra_{extra}.png").write_bytes(png)
    more = list(reversed(lines)) + [f"extra_{extra}.png,x" for extra in range(20)]
    reordered = data.load_folder(str(images), write_captions(tmp_path / "more.txt", more),
                                 SIZE, dev_fraction=0.2, test_fraction=0.2)
    moved = {e.source: split for split in ("train", "dev", "test")
             for e in getattr(reordered, split) if not e.source.startswith("extra_")}
    assert moved == membership


# -------------------------------------------------------------------- COCO
def test_coco_with_mock_data_resizes_images_and_keeps_captions(tmp_path):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=4):
        corpus = data.load_coco(SIZE, data_dir=str(tmp_path))
        first = data.load_coco(SIZE, data_dir=str(tmp_path), max_examples=2)
        raw = list(tfds.as_numpy(
            tfds.builder(data.COCO_NAME).as_dataset(split="val", shuffle_files=False)))
    assert [len(corpus.train), len(corpus.dev), len(corpus.test)] == [4, 4, 4]
    assert corpus.skipped == 0 and "coco_captions" in corpus.description
    for example in all_examples(corpus):
        assert example.image.dtype == np.uint8 and example.image.shape == (SIZE, SIZE, 3)
        assert isinstance(example.captions, list) and len(example.captions) >= 1
        assert all(isinstance(c, str) and c and c == " ".join(c.split())
                   for c in example.captions)
        assert example.objects is None
    # Each dev example is its raw image resized, with its raw captions.
    for example, original in zip(corpus.dev, raw):
        expected = images.resize_image(original["image"], SIZE).astype(int)
        np.testing.assert_allclose(example.image.astype(int), expected, atol=1)
        assert example.captions == [" ".join(t.decode().split())
                                    for t in original["captions"]["text"]
                                    if t.decode().strip()]
        assert example.source == f"coco/val/{original['image/filename'].decode()}"
    # max_examples keeps the first examples, in order.
    assert [len(first.train), len(first.dev), len(first.test)] == [2, 2, 2]
    for a, b in zip(first.train, corpus.train):
        assert np.array_equal(a.image, b.image) and a.captions == b.captions


def test_resize_image_keeps_a_sized_image_and_shrinks_by_averaging():
    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    assert np.array_equal(images.resize_image(image, SIZE), image)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 200  # one-pixel stripes average to 100 when shrunk 4x
    small = images.resize_image(stripes, SIZE)
    np.testing.assert_allclose(small[2:-2, 2:-2].astype(float), 100, atol=3)


def test_split_captioned_checks_fractions_and_names_an_empty_split():
    from types import SimpleNamespace

    from training.core.files import split_by_hash, split_captioned

    examples = [SimpleNamespace(source=f"image{i}.png") for i in range(40)]
    splits = split_captioned(examples, "caps.txt", "images", 0.2, 0.2, CaptionDataError)
    assert splits == split_by_hash(examples, lambda e: e.source, 0.2, 0.2)
    assert sorted(e.source for part in splits for e in part) == sorted(
        e.source for e in examples) and all(splits)
    for dev, test in ((-0.1, 0.1), (0.5, 0.5)):
        with pytest.raises(ValueError, match=f"received {dev} and {test}"):
            split_captioned(examples, "caps.txt", "images", dev, test, CaptionDataError)
    with pytest.raises(CaptionDataError,
                       match=r"^caps.txt: the dev split is empty \(1 images, dev_fraction 0.01, "
                             r"test_fraction 0\): add images or raise dev_fraction$"):
        split_captioned(examples[:1], "caps.txt", "images", 0.01, 0, CaptionDataError)
