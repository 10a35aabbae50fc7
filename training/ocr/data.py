"""Text-line corpora: generated lines, or a folder of line images with a
labels file.

Every loader returns an `OcrCorpus`: three lists of `LineExample` (train,
dev, test), each an RGB uint8 `[height, width, 3]` image with its text.

* `load_generated`: the default data set (`lines.generate_split`); each
  character's box is known, so attention can be scored against it.
* `load_folder`: a folder of line images and a labels file of `image,text`
  lines (a header `image,text` allowed; a text may be quoted). Bad input
  raises `OcrDataError` naming the file and line, unless
  `skip_bad_lines=True`, which skips and counts it. The split is a stable
  hash of the image name.
"""

from __future__ import annotations

import dataclasses
import os

from training.core import files, images
from training.ocr import lines

LABELS_HEADER = ("image", "text")


class OcrDataError(ValueError):
    """Text-recognition input is malformed; the message names the file and line."""


@dataclasses.dataclass(eq=False)
class LineExample:
    """One line image and its text; `boxes` (generated lines only) per
    character `(x0, y0, x1, y1)` or None for a space."""

    image: object
    text: str
    boxes: tuple | None = None
    source: str = ""


@dataclasses.dataclass
class OcrCorpus(files.SplitCorpus):
    """Text lines by split."""

    unit = "lines"


def load_generated(config):
    """The generated lines the config asks for (`train_lines`, `dev_lines`,
    `test_lines`, `data_seed`, the image size, `max_characters`, `line_noise`)."""
    splits = []
    for stream, count in (("train", config.train_lines), ("validation", config.dev_lines),
                          ("test", config.test_lines)):
        generated = lines.generate_split(count, config.data_seed, stream, config.image_height,
                                         config.image_width, config.max_characters,
                                         config.line_noise)
        splits.append([LineExample(line.image, line.text, line.boxes, f"generated/{stream}/{i}")
                       for i, line in enumerate(generated)])
    return OcrCorpus(*splits, description=(
        f"generated lines (seed {config.data_seed}, {config.image_height}x{config.image_width},"
        f" noise {config.line_noise})"))


def load_folder(images_dir, labels_file, size, skip_bad_lines=False, dev_fraction=0.05,
                test_fraction=0.05):
    """A folder of line images with a labels file; `size` is `(height, width)`.

    All lines naming one image must agree on its text; the first is kept.
    """
    if not os.path.isdir(images_dir):
        raise OcrDataError(f"{images_dir}: no such images folder")

    def load(name):
        try:
            return images.read_image(os.path.join(images_dir, name), size, OcrDataError)
        except OcrDataError as error:
            return str(error)

    texts, loaded, skipped = files.read_captioned_files(
        labels_file, lambda text: files.parse_captioned_line(text, "image"),
        lambda text: tuple(f.strip().lower() for f in text.lstrip("\ufeff").split(",")) ==
        LABELS_HEADER, load, OcrDataError, "image", skip_bad_lines)
    examples = [LineExample(loaded[name], labels[0], source=name)
                for name, labels in texts.items()]
    if not examples:
        raise OcrDataError(f"{labels_file}: no usable labelled images ({skipped} bad lines "
                           f"skipped)")
    corpus = OcrCorpus(*files.split_captioned(examples, labels_file, "images", dev_fraction,
                                              test_fraction, OcrDataError))
    corpus.skipped = skipped
    corpus.description = f"image folder {images_dir} with {labels_file}"
    return corpus
