"""Generated text lines: words, numbers and short phrases rendered in the
DejaVu fonts that ship with matplotlib, each character's box known.

Every line is drawn from its own seed (`(seed, stream, index)`), so a split
is the same on every machine and run, and the test split does not depend on
how many training lines were asked for.
"""

import dataclasses
import functools
import os
import string

import numpy as np

CHARACTERS = string.ascii_letters + string.digits + " .,:-/'"
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
         "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf")
STREAMS = {"train": 0, "validation": 1, "test": 2}
_CONSONANTS, _VOWELS = "bcdfghjklmnprstvwz", "aeiou"


@dataclasses.dataclass(frozen=True, eq=False)
class TextLine:
    """One rendered line.

    Attributes:
        image: uint8 `[height, width, 3]` RGB.
        text: What it says (single spaces, no space at either end).
        boxes: Per character of `text`, its ink box `(x0, y0, x1, y1)` in
            pixels (x1, y1 exclusive), or None for a space.
        font: The font file's name.
    """

    image: np.ndarray
    text: str
    boxes: tuple
    font: str


def random_text(rng, max_characters):
    """A word (a pronounceable made-up one, any case), a number (integer,
    decimal, date, time, signed) or a phrase of two or three words, with
    at most `max_characters` characters."""
    def word():
        # `s[rng.integers(len(s))]` draws as `rng.choice(list(s))` does, 7x faster.
        letters = "".join(_CONSONANTS[rng.integers(len(_CONSONANTS))]
                          + _VOWELS[rng.integers(len(_VOWELS))]
                          + (_CONSONANTS[rng.integers(len(_CONSONANTS))]
                             if rng.random() < 0.4 else "")
                          for _ in range(rng.integers(1, 4)))
        case = rng.random()
        return letters.upper() if case < 0.1 else letters.title() if case < 0.4 else letters

    def number():
        kind = rng.integers(0, 5)
        if kind == 0:
            return str(rng.integers(0, 10 ** rng.integers(1, 7)))
        if kind == 1:
            return f"{rng.uniform(0, 1000):.{rng.integers(1, 3)}f}"
        if kind == 2:
            return f"{rng.integers(1, 29):02d}/{rng.integers(1, 13):02d}/{rng.integers(1990, 2031)}"
        if kind == 3:
            return f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"
        return f"-{rng.integers(1, 1000)}"

    while True:
        kind = rng.random()
        if kind < 0.4:
            text = word()
        elif kind < 0.65:
            text = number()
        else:
            parts = [word() if rng.random() < 0.8 else number()
                     for _ in range(rng.integers(2, 4))]
            if rng.random() < 0.2:
                parts[0] += rng.choice([",", ":"])
            if rng.random() < 0.2:
                parts[-1] += "."
            if rng.random() < 0.1:
                parts[-1] = parts[-1].rstrip(".") + "'s"
            text = " ".join(parts)
        if len(text) <= max_characters:
            return text


@functools.lru_cache(maxsize=None)
def _font(name, size):
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name),
                              size)


def render_line(text, rng, height, width, noise=0.03, max_rotation=2.0):
    """`text` drawn on a `height x width` image: a random font and size (12
    to 20 px, smaller if the text would not fit), place, colours (dark on
    light or light on dark), a slight rotation and pixel noise. Returns a
    `TextLine`; each box is the character's ink box, rotated with the image
    (the bounds of its turned corners)."""
    from PIL import Image, ImageDraw

    font_name = FONTS[rng.integers(len(FONTS))]
    size = int(rng.integers(12, 21))
    while size > 6 and _font(font_name, size).getlength(text) > width - 6:
        size -= 1
    font = _font(font_name, size)
    ascent, descent = font.getmetrics()
    x = int(rng.integers(2, max(3, width - int(font.getlength(text)) - 2)))
    y = int(round((height - ascent - descent) / 2 + rng.uniform(-3, 3)))
    ink, paper = rng.integers(0, 90, 3), rng.integers(170, 256, 3)
    if rng.random() < 0.25:
        ink, paper = 255 - ink, 255 - paper
    image = Image.new("RGB", (width, height), tuple(int(v) for v in paper))
    ImageDraw.Draw(image).text((x, y), text, font=font, fill=tuple(int(v) for v in ink))
    angle = float(rng.uniform(-max_rotation, max_rotation))
    image = image.rotate(angle, resample=Image.BILINEAR, fillcolor=tuple(int(v) for v in paper))

    centre_x, centre_y = width / 2, height / 2
    cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    boxes = []
    for i, character in enumerate(text):
        if character == " ":
            boxes.append(None)
            continue
        left, top, right, bottom = font.getbbox(character)
        origin = x + font.getlength(text[:i])
        corners = np.array([(origin + left, y + top), (origin + right, y + top),
                            (origin + left, y + bottom), (origin + right, y + bottom)])
        # PIL turns the image counter-clockwise by `angle` about its centre
        # (y points down).
        dx, dy = corners[:, 0] - centre_x, corners[:, 1] - centre_y
        turned_x, turned_y = centre_x + dx * cos + dy * sin, centre_y - dx * sin + dy * cos
        boxes.append((int(np.floor(turned_x.min())), int(np.floor(turned_y.min())),
                      int(np.ceil(turned_x.max())), int(np.ceil(turned_y.max()))))
    pixels = np.asarray(image, np.float32)
    if noise:
        pixels = pixels + rng.normal(0.0, noise * 255.0, pixels.shape)
    return TextLine(np.clip(np.round(pixels), 0, 255).astype(np.uint8), text, tuple(boxes),
                    font_name)


def generate_line(seed, stream, index, height, width, max_characters, noise=0.03):
    """The `index`-th line of `stream` ("train", "validation", "test")."""
    rng = np.random.default_rng([seed, STREAMS[stream], index])
    return render_line(random_text(rng, max_characters), rng, height, width, noise)


def generate_split(count, seed, stream, height, width, max_characters, noise=0.03):
    """`count` lines of one stream: a list of `TextLine`.

    Example:

    >>> lines = generate_split(2, seed=0, stream="test", height=32, width=160,
    ...                        max_characters=12)
    >>> lines[0].image.shape, len(lines[0].boxes) == len(lines[0].text)
    ((32, 160, 3), True)
    """
    return [generate_line(seed, stream, i, height, width, max_characters, noise)
            for i in range(count)]
