"""Captioning corpora: generated scenes, an image folder with a captions file, COCO.

Every loader returns a `CaptionCorpus`: three lists of `CaptionExample`
(train, dev, test), each an RGB uint8 ``[image_size, image_size, 3]`` image with
one or more reference captions, plus the count of what was skipped.

* `load_generated`: the default data set, `scenes.split_scenes`; no download,
  one caption per image, with the objects the caption names.
* `load_folder`: the Flickr8k layout, a folder of images and a captions file of
  ``image,caption`` lines (several lines per image give several references).
  Bad input raises `CaptionDataError` naming the file and line, unless
  ``skip_bad_lines=True``, which skips and counts it.
* `load_coco`: COCO 2014 captions with the Karpathy splits through
  tensorflow-datasets (``coco_captions``); about 5 captions per image.

Captions are kept as written, whitespace collapsed; the text vectorization
lowercases and tokenizes them.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from training.captioning import scenes
from training.core import files, images

COCO_NAME = "coco_captions/2014"
"""The tfds name: COCO 2014 images with captions; its only config is ``2014``.

Its splits are Karpathy and Li's: ``train`` (82,783 images), ``val`` (5,000),
``test`` (5,000) and ``restval`` (30,504, often added to train: pass
``"train+restval"`` as the first split name)."""

COCO_SPLITS = ("train", "val", "test")
CAPTIONS_HEADER = ("image", "caption")


class CaptionDataError(ValueError):
    """Captioning input is malformed; the message names the file and line."""


@dataclasses.dataclass(eq=False)
class CaptionExample:
    """One image with its reference captions.

    Attributes:
        image: uint8 ``[H, W, 3]`` RGB image, already resized to the task's size.
        captions: one or more non-empty caption strings, whitespace collapsed.
        objects: generated scenes only: the `scenes.SceneObject`s the caption names.
        word_objects: generated scenes only: per caption word, the index in
            `objects` of the object it describes, or `scenes.NO_OBJECT`.
        source: where the example comes from: the image file name, the COCO file
            name, or ``generated/<stream>/<index>``.
    """

    image: np.ndarray
    captions: list
    objects: tuple | None = None
    word_objects: tuple | None = None
    source: str = ""


@dataclasses.dataclass
class CaptionCorpus(files.SplitCorpus):
    """Captioned images by split."""

    unit = "images"
    counted = "captions"

    def details(self):
        sizes = {example.image.shape[:2] for split in (self.train, self.dev, self.test)
                 for example in split}
        size = ("x".join(str(s) for s in next(iter(sizes))) if len(sizes) == 1
                else "mixed" if sizes else "none")
        return f"images {size}"


# ------------------------------------------------------------ generated scenes
def load_generated(train_count, dev_count, test_count, seed, image_size, noise=0.0, clutter=0,
                   max_objects=3):
    """The generated scenes of `scenes.split_scenes`: one caption per image.

    Deterministic: the same arguments give byte-identical images and the same
    captions. The dev split is the ``"validation"`` stream; the test split
    depends only on `seed`, `test_count`, `image_size`, `noise` and `clutter`.
    """
    splits = scenes.split_scenes(train_count, test_count, seed, validation_count=dev_count,
                                 image_size=image_size, noise=noise, clutter=clutter,
                                 max_objects=max_objects)
    parts = []
    for stream, generated in zip(("train", "validation", "test"), splits):
        parts.append([
            CaptionExample(scene.image, [scene.caption], objects=scene.objects,
                           word_objects=scene.word_objects, source=f"generated/{stream}/{i}")
            for i, scene in enumerate(generated)
        ])
    return CaptionCorpus(
        *parts,
        description=(f"generated scenes (seed {seed}, {image_size}x{image_size}, "
                     f"noise {noise}, clutter {clutter})"),
    )


# ------------------------------------------------------------------ images
def read_image(path, image_size):
    """A JPEG, PNG, GIF (first frame), BMP or WebP file -> RGB uint8 ``[size, size, 3]``;
    `CaptionDataError` naming the path if it is missing or not an image."""
    return images.read_image(path, image_size, CaptionDataError)


# ------------------------------------------------------------ image folder
def load_folder(images_dir, captions_file, image_size, skip_bad_lines=False,
                dev_fraction=0.05, test_fraction=0.05):
    """A folder of images with a captions file: the Flickr8k layout.

    The captions file has one ``image,caption`` line per caption, the image a
    file name relative to `images_dir`; a first line ``image,caption`` is a
    header and skipped, blank lines are ignored, a caption may be quoted
    (``img.jpg,"a dog, running"``) and may contain unquoted commas (everything
    after the first comma is the caption). All captions of one image become
    one `CaptionExample`, in the order of the image's first line.

    The split is a stable hash (crc32) of the image file name, so it does not
    change between runs or when lines are added, and all captions of an image
    land in the same split.

    Raises `CaptionDataError` naming the captions file and line for a malformed
    line (no comma, no image name), an empty caption, a missing image, or an
    unreadable, truncated or non-image file (the message names the image path
    too). With ``skip_bad_lines=True`` those lines are skipped and counted in
    `CaptionCorpus.skipped` instead: every line that refers to a bad image
    counts once.
    """
    if not os.path.isdir(images_dir):
        raise CaptionDataError(f"{images_dir}: no such images folder")

    def load(name):
        try:
            return read_image(os.path.join(images_dir, name), image_size)
        except CaptionDataError as error:
            return str(error)

    captions, images, skipped = files.read_captioned_files(
        captions_file, _parse_line, _is_header, load, CaptionDataError, "image", skip_bad_lines)

    examples = [CaptionExample(images[name], texts, source=name)
                for name, texts in captions.items()]
    if not examples:
        raise CaptionDataError(
            f"{captions_file}: no usable captioned images ({skipped} bad lines skipped)"
        )
    corpus = CaptionCorpus(*files.split_captioned(
        examples, captions_file, "images", dev_fraction, test_fraction, CaptionDataError))
    corpus.skipped = skipped
    corpus.description = f"image folder {images_dir} with {captions_file}"
    return corpus


def _is_header(text):
    fields = [field.strip().lower() for field in text.lstrip("\ufeff").split(",")]
    return tuple(fields) == CAPTIONS_HEADER


def _parse_line(text):
    """``(image name, caption, None)``, or ``(name, None, problem)`` for a malformed line."""
    return files.parse_captioned_line(text, "image")


# -------------------------------------------------------------------- COCO
def load_coco(image_size, data_dir=None, split_names=COCO_SPLITS, max_examples=0):
    """COCO 2014 captions (Karpathy splits) through tensorflow-datasets.

    Args:
        image_size: side of the resized square images.
        data_dir: TFDS data directory.
        split_names: the (train, dev, test) tfds splits; see `COCO_NAME`.
        max_examples: if > 0, at most this many images per split (the first ones).

    Examples whose captions are all empty are skipped and counted.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if len(split_names) != 3:
        raise ValueError(f"split_names must name (train, dev, test) splits, received {split_names}")
    builder = tfds.builder(COCO_NAME, data_dir=data_dir)
    # Only with data=coco, which the user chooses: it needs the prepared data
    # set in data_dir, or internet and about 40 GB of disk to download and
    # prepare it (COCO 2014 images). The default data set is generated, and the
    # tests run this path under tfds.testing.mock_data.
    builder.download_and_prepare()

    def prepare(example):
        image = tf.image.resize(example["image"], [image_size, image_size], antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, example["captions"]["text"], example["image/filename"]

    parts, skipped = [], 0
    for split in split_names:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        if max_examples > 0:
            dataset = dataset.take(max_examples)
        # Keep the order: the first max_examples are always the same ones.
        dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        examples = []
        for image, texts, filename in tfds.as_numpy(dataset):
            captions = [" ".join(text.decode("utf-8", errors="replace").split())
                        for text in texts]
            captions = [caption for caption in captions if caption]
            if not captions:
                skipped += 1
                continue
            source = filename.decode("utf-8", errors="replace")
            examples.append(CaptionExample(image, captions, source=f"coco/{split}/{source}"))
        parts.append(examples)
    return CaptionCorpus(*parts, skipped=skipped,
                         description=f"tfds {COCO_NAME} ({', '.join(split_names)})")
