"""Video captioning corpora: generated clips, and a folder of clips with a captions file.

Every loader returns a `VideoCorpus`: three lists of `VideoExample` (train,
dev, test), each a clip with one or more reference captions, plus the count of
what was skipped.  A clip is either frames, RGB uint8 ``[T, S, S, 3]`` with
``S = frame_size``, or precomputed per-frame features, float32 ``[T, D]``.

* `load_generated`: the default data set, `clips.default_splits`; no download,
  one caption per clip, with its events (frame spans and caption words).
* `load_folder`: a folder of clips and a captions file of ``clip,caption``
  lines (several lines per clip give several references).  A clip is a folder
  of frame images, an animated GIF, a video file (when OpenCV or imageio is
  installed) or a ``.npy`` / ``.npz`` file of features.  Bad input raises
  `VideoDataError` naming the file and line, unless ``skip_bad_lines=True``,
  which skips and counts it.

`encode_gif` and `decode_gif` turn frames into GIF bytes and back, losslessly
for clips of at most 256 colours (the generated ones without noise).

Example
-------
>>> corpus = load_generated(4, 2, 3, seed=0, frame_size=32)
>>> example = corpus.train[0]
>>> example.frames.shape, example.source
((16, 32, 32, 3), 'generated/train/0')
>>> example.captions[0].split(" , then ")
['a blue triangle moves down', 'a white circle disappears', 'the blue triangle disappears']
>>> [(event.kind, event.start_frame, event.end_frame) for event in example.events]
[('move', 1, 4), ('disappear', 4, 10), ('disappear', 10, 16)]
>>> decode_gif(encode_gif(example.frames)).tobytes() == example.frames.tobytes()
True
"""

from __future__ import annotations

import dataclasses
import io
import os
import re

import numpy as np

from training.core import files
from training.video import clips

CAPTIONS_HEADERS = (("clip", "caption"), ("video", "caption"), ("path", "caption"))
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
"""Files of a folder clip read as frames; other files (and hidden ones) are ignored."""
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
FEATURE_EXTENSIONS = (".npy", ".npz")
FEATURES_KEY = "features"
"""The array of an ``.npz`` clip."""
VIDEO_DECODERS = "opencv-python (import cv2) or imageio with imageio-ffmpeg"


class VideoDataError(ValueError):
    """Video captioning input is malformed; the message names the file (and line)."""


@dataclasses.dataclass(eq=False)
class VideoExample:
    """One clip with its reference captions.

    Exactly one of `frames` and `features` is set.

    Attributes:
        frames: uint8 ``[T, S, S, 3]`` RGB frames, already resized to the task's size.
        captions: one or more non-empty caption strings, whitespace collapsed.
        features: float32 ``[T, D]`` precomputed per-frame features.
        events: generated clips only: the `clips.Event`s, in caption order.
        source: the clip's name in the captions file, or ``generated/<stream>/<index>``.
    """

    frames: np.ndarray | None
    captions: list
    features: np.ndarray | None = None
    events: tuple | None = None
    source: str = ""

    @property
    def length(self) -> int:
        """T, the number of frames."""
        return len(self.frames if self.frames is not None else self.features)


@dataclasses.dataclass
class VideoCorpus(files.SplitCorpus):
    """Captioned clips by split."""

    unit = "clips"
    counted = "captions"

    def details(self):
        examples = self.train + self.dev + self.test
        lengths = [example.length for example in examples]
        frames = (f"{min(lengths)}-{max(lengths)} frames" if lengths else "no frames")
        shapes = {(example.frames.shape[1:] if example.frames is not None
                   else example.features.shape[1:]) for example in examples}
        if not shapes:
            kind = "none"
        elif len(shapes) > 1:
            kind = "mixed"
        else:
            shape = next(iter(shapes))
            kind = (f"features of {shape[0]}" if len(shape) == 1
                    else f"{shape[0]}x{shape[1]} frames")
        return f"{frames}, {kind}"


# ------------------------------------------------------------ generated clips
def load_generated(train_count, dev_count, test_count, seed, frame_size=32, frame_count=16,
                   max_events=clips.MAX_EVENTS, noise=0.0, reorder_fraction=0.5):
    """The generated clips of `clips.default_splits`: one caption per clip, with its events.

    Deterministic: the same arguments give byte-identical frames and the same
    captions; the test split does not depend on `train_count` or `dev_count`.
    """
    splits = clips.default_splits(train_count, dev_count, test_count, seed,
                                  frame_count=frame_count, frame_size=frame_size,
                                  max_events=max_events, noise=noise,
                                  reorder_fraction=reorder_fraction)
    parts = [[VideoExample(clip.frames, [clip.caption], events=clip.events,
                           source=f"generated/{stream}/{index}")
              for index, clip in enumerate(generated)]
             for stream, generated in zip(clips.STREAMS, splits)]
    return VideoCorpus(*parts, description=(
        f"generated clips (seed {seed}, {frame_size}x{frame_size}, frames {frame_count}, "
        f"noise {noise})"))


# ------------------------------------------------------------ reading one clip
def subsample_indices(length: int, max_frames: int) -> np.ndarray:
    """Indices of at most `max_frames` of `length` frames, evenly spread, first and last kept.

    >>> subsample_indices(5, 8).tolist(), subsample_indices(10, 4).tolist()
    ([0, 1, 2, 3, 4], [0, 3, 6, 9])
    """
    if length <= max_frames:
        return np.arange(length)
    return np.floor(np.linspace(0, length - 1, max_frames) + 0.5).astype(int)


def read_clip(path: str, frame_size: int, max_frames: int = clips.MAX_FRAMES) -> np.ndarray:
    """One clip -> uint8 frames ``[T, S, S, 3]`` or float32 features ``[T, D]``.

    `path` is a folder of frame images (read in natural name order:
    ``frame2.png`` before ``frame10.png``), an animated GIF, a video file
    (`VIDEO_EXTENSIONS`, with OpenCV or imageio), or a ``.npy`` array / ``.npz``
    archive (key ``features``) of shape ``[T, D]``.  Frames are converted to
    RGB (grayscale repeated, alpha dropped) and resized to ``S x S`` (bilinear,
    averaging when shrinking).  A clip longer than `max_frames` is subsampled
    evenly (`subsample_indices`), never refused or cut.

    Raises `VideoDataError` naming the path (and the frame file) if the clip
    is missing, unreadable, has no frames, holds an array that is not
    ``[T, D]`` numbers, or is a video that no installed package decodes.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if os.path.isdir(path):
        return _read_frame_folder(path, frame_size, max_frames)
    if not os.path.isfile(path):
        raise VideoDataError(f"{path}: no such clip file or folder")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".gif":
        return _read_gif_file(path, frame_size, max_frames)
    if extension in VIDEO_EXTENSIONS:
        return _read_video(path, frame_size, max_frames)
    if extension in FEATURE_EXTENSIONS:
        return _read_features(path, max_frames)
    raise VideoDataError(
        f"{path}: not a clip: expected a folder of frame images, a .gif, a video file "
        f"({', '.join(VIDEO_EXTENSIONS)}) or features (.npy, .npz)")


def _resize(image, frame_size):
    """A PIL image -> RGB uint8 ``[S, S, 3]``."""
    from PIL import Image

    image = image.convert("RGB")
    if image.size != (frame_size, frame_size):
        # Pillow widens the bilinear kernel when shrinking, so it averages
        # rather than skips pixels.
        image = image.resize((frame_size, frame_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _resize_array(frame, frame_size):
    from PIL import Image

    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim == 3:
        frame = frame[..., :3]
    return _resize(Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)), frame_size)


def _natural_key(name):
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", name)]


def _read_frame_folder(path, frame_size, max_frames):
    from PIL import Image

    names = sorted((name for name in os.listdir(path)
                    if not name.startswith(".")
                    and os.path.splitext(name)[1].lower() in FRAME_EXTENSIONS
                    and os.path.isfile(os.path.join(path, name))), key=_natural_key)
    if not names:
        raise VideoDataError(f"{path}: no frames: a folder clip needs frame images "
                             f"({', '.join(FRAME_EXTENSIONS)})")
    frames = []
    for index in subsample_indices(len(names), max_frames):
        frame_path = os.path.join(path, names[index])
        try:
            with Image.open(frame_path) as image:
                frames.append(_resize(image, frame_size))
        except (OSError, ValueError, SyntaxError) as error:
            raise VideoDataError(f"{frame_path}: not a readable frame image: "
                                 f"{_reason(error)}") from None
    return np.stack(frames)


def _gif_frames(image, frame_size, max_frames):
    """All (or `max_frames` evenly spread) frames of an open GIF, composited, RGB uint8."""
    count = getattr(image, "n_frames", 1)
    frames = []
    for index in subsample_indices(count, max_frames if max_frames else count):
        image.seek(int(index))
        frames.append(np.asarray(image.convert("RGB"), dtype=np.uint8) if frame_size is None
                      else _resize(image, frame_size))
    return np.stack(frames)


def _read_gif_file(path, frame_size, max_frames):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return _gif_frames(image, frame_size, max_frames)
    except (OSError, ValueError, EOFError, SyntaxError) as error:
        raise VideoDataError(f"{path}: not a readable GIF (truncated or corrupt?): "
                             f"{_reason(error)}") from None


def _read_video(path, frame_size, max_frames):
    """Decode with OpenCV if installed, else imageio; neither is a dependency."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        frames = _opencv_frames(cv2, path, frame_size)
    else:
        try:
            import imageio.v3 as imageio
        except ImportError:
            raise VideoDataError(
                f"{path}: cannot decode a {os.path.splitext(path)[1]} video: no video decoder "
                f"is installed. Install {VIDEO_DECODERS}, or convert the clip to an animated "
                f"GIF or a folder of frame images") from None
        frames = _imageio_frames(imageio, path, frame_size)
    if not frames:
        raise VideoDataError(f"{path}: no frames: the video decoded to nothing")
    return np.stack([frames[index] for index in subsample_indices(len(frames), max_frames)])


def _opencv_frames(cv2, path, frame_size):
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoDataError(f"{path}: OpenCV cannot open this video "
                                 f"(corrupt, or a codec it lacks)")
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                return frames
            # OpenCV decodes to BGR.
            frames.append(_resize_array(np.asarray(frame)[..., ::-1], frame_size))
    finally:
        capture.release()


def _imageio_frames(imageio, path, frame_size):
    try:
        return [_resize_array(frame, frame_size) for frame in imageio.imiter(path)]
    except Exception as error:  # noqa: BLE001 - its plugins raise many kinds
        raise VideoDataError(f"{path}: imageio cannot decode this video: "
                             f"{_reason(error)}") from None


def _read_features(path, max_frames):
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if FEATURES_KEY not in loaded.files:
                    raise VideoDataError(f"{path}: no {FEATURES_KEY!r} array in the archive "
                                         f"(it holds {sorted(loaded.files)})")
                features = loaded[FEATURES_KEY]
        else:
            features = loaded
    except VideoDataError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise VideoDataError(f"{path}: not a readable numpy file: {_reason(error)}") from None
    if features.ndim != 2 or not (np.issubdtype(features.dtype, np.number)
                                  or features.dtype == bool):
        raise VideoDataError(f"{path}: features must be numbers of shape [T, D], got "
                             f"{features.dtype} {list(features.shape)}")
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise VideoDataError(f"{path}: no frames: features of shape {list(features.shape)}")
    features = features[subsample_indices(len(features), max_frames)].astype(np.float32)
    if not np.isfinite(features).all():
        raise VideoDataError(f"{path}: features hold NaN or infinity")
    return features


def _reason(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# ------------------------------------------------------------ GIF bytes
def encode_gif(frames: np.ndarray, frame_ms: int = 100) -> bytes:
    """uint8 RGB frames ``[T, H, W, 3]`` -> an animated GIF, every frame kept, looping.

    One palette for the whole clip: exact when the clip has at most 256
    colours, else a median-cut palette of 256 (lossy, no dithering).  Still
    frames are kept as frames, where Pillow's ``save_all`` would merge them.

    >>> frames = np.zeros((3, 4, 4, 3), np.uint8); frames[1, 0, 0] = 255
    >>> decode_gif(encode_gif(frames)).shape
    (3, 4, 4, 3)
    """
    from PIL import GifImagePlugin, Image

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} "
                         f"{list(frames.shape)}")
    count, height, width, _ = frames.shape
    keys = frames.reshape(-1, 3).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    colours, indices = np.unique(keys, return_inverse=True)
    if len(colours) <= 256:
        palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
        indices = indices.reshape(count * height, width).astype(np.uint8)
    else:
        # All frames stacked into one image share one quantised palette.
        quantised = Image.fromarray(frames.reshape(count * height, width, 3)).quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        indices = np.asarray(quantised)
        palette = np.array(quantised.getpalette()[:768]).reshape(-1, 3)
    palette_bytes = palette.astype(np.uint8).tobytes()
    images = []
    for frame in indices.reshape(count, height, width):
        image = Image.fromarray(frame, mode="P")
        image.putpalette(palette_bytes)
        images.append(image)
    # Pillow's legacy per-frame writer: the header with the global palette,
    # then each frame as it is (save_all drops a frame equal to the one before).
    header, _ = GifImagePlugin.getheader(images[0], info={"loop": 0, "duration": frame_ms})
    parts = list(header)
    for image in images:
        parts.extend(GifImagePlugin.getdata(image, duration=frame_ms))
    parts.append(b";")
    return b"".join(parts)


def decode_gif(data: bytes) -> np.ndarray:
    """GIF bytes -> uint8 RGB frames ``[T, H, W, 3]``, every frame, composited as shown.

    Raises `VideoDataError` if the bytes are not a readable GIF.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
            frames = _gif_frames(image, None, None) if found == "GIF" else None
    except (OSError, ValueError, EOFError, SyntaxError) as error:
        raise VideoDataError(f"not a readable GIF: {_reason(error)}") from None
    if frames is None:
        raise VideoDataError(f"not a GIF but {found}")
    return frames


# ------------------------------------------------------------ clip folder
def load_folder(clips_dir, captions_file, frame_size, max_frames=clips.MAX_FRAMES,
                skip_bad_lines=False, dev_fraction=0.05, test_fraction=0.05):
    """A folder of clips with a captions file.

    The captions file has one ``clip,caption`` line per caption (or
    ``clip<TAB>caption``: a line with a tab is split at its first tab, else at
    its first comma), the clip a path relative to `clips_dir`: a folder of frame
    images, a ``.gif``, a video file or a ``.npy``/``.npz`` of features (see
    `read_clip`).  A first line ``clip,caption`` (or ``video``/``path`` for
    ``clip``) is a header and skipped, blank lines are ignored, a caption may
    be quoted (``a.gif,"a dog, running"``) and may contain unquoted commas.
    All captions of one clip become one `VideoExample`, in the order of the
    clip's first line.  Clips longer than `max_frames` are subsampled evenly.

    All clips must be of one kind: frames, or features of one size D, as the
    first clip read.  The split is a stable hash (crc32) of the clip name, so all
    captions of a clip land in the same split and adding lines moves no clip.

    Raises `VideoDataError` naming the captions file and line for a malformed
    line (no separator, no clip name, empty caption), a missing, unreadable or
    empty clip, a video no installed package decodes, or a clip of another kind
    or feature size than the first (the message names the clip path too).  With
    ``skip_bad_lines=True`` those lines are skipped and counted in
    `VideoCorpus.skipped` instead: every line of a bad clip counts once.
    """
    if not os.path.isdir(clips_dir):
        raise VideoDataError(f"{clips_dir}: no such clips folder")
    first = None       # (name, trailing shape) of the first clip read: the corpus's kind

    def load(name):
        nonlocal first
        array = _load_clip(os.path.join(clips_dir, name), frame_size, max_frames, first)
        if first is None and not isinstance(array, str):
            first = (name, array.shape[1:])
        return array

    captions, loaded, skipped = files.read_captioned_files(
        captions_file, _parse_line, _is_header, load, VideoDataError, "clip", skip_bad_lines)
    if not captions:
        raise VideoDataError(
            f"{captions_file}: no usable captioned clips ({skipped} bad lines skipped)")
    examples = []
    for name, texts in captions.items():
        array = loaded[name]
        is_features = array.ndim == 2
        examples.append(VideoExample(None if is_features else array, texts,
                                     features=array if is_features else None, source=name))
    corpus = VideoCorpus(*files.split_captioned(
        examples, captions_file, "clips", dev_fraction, test_fraction, VideoDataError),
        skipped=skipped, description=f"clip folder {clips_dir} with {captions_file}")
    return corpus


def _load_clip(path, frame_size, max_frames, first):
    """The clip's array, or the text of what is wrong with it (also a kind unlike `first`'s)."""
    try:
        array = read_clip(path, frame_size, max_frames)
    except VideoDataError as error:
        return str(error)
    if first is not None and array.shape[1:] != first[1]:
        def kind(shape):
            return f"features of size {shape[0]}" if len(shape) == 1 else "frames"
        return (f"{path}: {kind(array.shape[1:])} where the first clip, {first[0]!r}, has "
                f"{kind(first[1])}: all clips must be frames, or features of one size")
    return array


def _parse_line(text):
    """``(clip name, caption, None)``, or ``(name, None, problem)`` for a malformed line."""
    # "clip/" and "clip" are one folder clip.
    return files.parse_captioned_line(text, "clip", tabs=True,
                                      clean_name=lambda name: name.strip().rstrip("/\\"))


def _is_header(text):
    fields = tuple(field.strip().lower() for field in re.split(r"[\t,]", text.lstrip("\ufeff")))
    return fields in CAPTIONS_HEADERS
