"""Video captioning loaders: generated clips, a clip folder with a captions file, GIF bytes.

Every malformed folder input must raise `VideoDataError` naming the captions
file and line (and the clip path for a bad clip), or be skipped and counted
with `skip_bad_lines=True`.  Video files are read through OpenCV or imageio,
neither a dependency of the package.  imageio with imageio-ffmpeg is in the
test extra and decodes a real MP4; stand-ins cover OpenCV and the imageio
branches a real file cannot reach.
"""

import doctest
import io
import re
import sys
import types
import zlib

import numpy as np
import pytest
from bad_lines import assert_bad_line_named_then_skipped
from PIL import Image

from training.video import clips, data
from training.video.data import VideoDataError

SIZE = 16
RED, GREEN, BLUE = (230, 20, 20), (20, 200, 30), (30, 40, 240)


def solid_frames(count, colours=None, height=20, width=24):
    """uint8 ``[count, height, width, 3]``; frame i has colour ``colours[i]`` or grey level 6 i."""
    colours = colours or [(6 * i, 6 * i, 6 * i) for i in range(count)]
    return np.stack([np.broadcast_to(np.array(c, np.uint8), (height, width, 3))
                     for c in colours[:count]])


def frame_means(frames):
    return frames.reshape(len(frames), -1, 3).astype(float).mean(axis=1)


def write_captions(path, lines, header="clip,caption"):
    text = (header + "\n" if header else "") + "".join(line + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return str(path)


def write_gif(path, frames):
    path.write_bytes(data.encode_gif(frames))
    return path.name


def good_folder(tmp_path, count=3):
    """`count` 4-frame GIF clips named good{i}.gif, one caption line each."""
    folder = tmp_path / "clips"
    folder.mkdir(exist_ok=True)
    lines = []
    for i in range(count):
        write_gif(folder / f"good{i}.gif", solid_frames(4, [(20 * i, 100, 200)] * 4))
        lines.append(f"good{i}.gif,a good clip number {i}")
    return folder, lines


def load(folder, captions, **keywords):
    return data.load_folder(str(folder), captions, SIZE, dev_fraction=0, test_fraction=0,
                            **keywords)


def all_examples(corpus):
    return corpus.train + corpus.dev + corpus.test


class FakeCapture:
    """A stand-in for ``cv2.VideoCapture``: `rgb_frames` decoded as BGR, as OpenCV does."""

    rgb_frames = solid_frames(12)
    opened = []

    def __init__(self, path):
        self.path = path
        self.frames = [np.ascontiguousarray(frame[..., ::-1]) for frame in self.rgb_frames]
        self.released = False
        FakeCapture.opened.append(self)

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return not self.path.endswith("broken.mp4")

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self):
        self.released = True


@pytest.fixture
def no_video_decoder(monkeypatch):
    """Neither OpenCV nor imageio importable, whether installed or not."""
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setitem(sys.modules, "imageio", None)
    monkeypatch.setitem(sys.modules, "imageio.v3", None)


# ------------------------------------------------------------ generated clips
def test_generated_sizes_determinism_and_events():
    corpus = data.load_generated(5, 2, 3, seed=4, frame_size=24, frame_count=12)
    again = data.load_generated(5, 2, 3, seed=4, frame_size=24, frame_count=12)
    assert [len(corpus.train), len(corpus.dev), len(corpus.test)] == [5, 2, 3]
    expected = clips.default_splits(5, 2, 3, seed=4, frame_size=24, frame_count=12)
    for split, generated, repeat in zip(
            (corpus.train, corpus.dev, corpus.test), expected,
            (again.train, again.dev, again.test)):
        for example, clip, other in zip(split, generated, repeat, strict=True):
            assert example.frames.dtype == np.uint8 and example.frames.shape == (12, 24, 24, 3)
            assert np.array_equal(example.frames, clip.frames)
            assert np.array_equal(other.frames, example.frames)
            assert example.captions == [clip.caption] and example.events == clip.events
            assert example.features is None and example.length == 12
    assert [e.source for e in corpus.dev] == ["generated/dev/0", "generated/dev/1"]
    bigger = data.load_generated(9, 0, 3, seed=4, frame_size=24, frame_count=12)
    assert [e.captions for e in bigger.test] == [e.captions for e in corpus.test]
    summary = corpus.summary()
    assert "train 5 clips (5 captions), dev 2 clips (2 captions)" in summary
    assert "12-12 frames, 24x24 frames" in summary


# ------------------------------------------------------------ GIF bytes
def test_gif_round_trip_is_exact_and_keeps_still_frames():
    for clip in clips.generate_clips(20, seed=3, frame_count=(8, 32)):
        decoded = data.decode_gif(data.encode_gif(clip.frames))
        # Still frames stay frames: T is kept.
        assert decoded.shape == clip.frames.shape
        assert decoded.tobytes() == clip.frames.tobytes()


def test_gif_of_many_colours_is_close():
    noisy = clips.generate_clips(1, seed=3, noise=0.05)[0].frames
    decoded = data.decode_gif(data.encode_gif(noisy))
    assert decoded.shape == noisy.shape
    assert np.abs(decoded.astype(int) - noisy.astype(int)).mean() < 6


def test_decode_gif_reads_gifs_written_by_pillow():
    frames = solid_frames(5, [RED, GREEN, BLUE, GREEN, RED])
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=50)
    decoded = data.decode_gif(buffer.getvalue())
    np.testing.assert_allclose(frame_means(decoded), [RED, GREEN, BLUE, GREEN, RED], atol=3)


def test_gif_errors():
    with pytest.raises(VideoDataError, match="not a readable GIF"):
        data.decode_gif(b"GIF89a but nothing after")
    png = io.BytesIO()
    Image.fromarray(solid_frames(1)[0]).save(png, format="PNG")
    with pytest.raises(VideoDataError, match="not a GIF but PNG"):
        data.decode_gif(png.getvalue())
    for bad in (np.zeros((4, 4, 3), np.uint8), np.zeros((2, 4, 4, 3), np.float32),
                np.zeros((0, 4, 4, 3), np.uint8), np.zeros((2, 4, 4, 4), np.uint8)):
        with pytest.raises(ValueError, match=r"uint8 \[T, H, W, 3\]"):
            data.encode_gif(bad)


# ------------------------------------------------------------ reading clips
def test_frame_folder_in_natural_order_resized_ignoring_other_files(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    frames = solid_frames(12)
    for i, frame in enumerate(frames):
        # PNG and JPEG mixed, numbered without padding: frame2 before frame10.
        Image.fromarray(frame).save(folder / f"frame{i}.{'png' if i % 2 else 'jpg'}")
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"ignored")
    (folder / "sub.png").mkdir()
    read = data.read_clip(str(folder), SIZE)
    assert read.dtype == np.uint8 and read.shape == (12, SIZE, SIZE, 3)
    np.testing.assert_allclose(frame_means(read), frame_means(frames), atol=2)
    fewer = data.read_clip(str(folder), SIZE, max_frames=4)
    np.testing.assert_allclose(frame_means(fewer), frame_means(frames[[0, 4, 7, 11]]), atol=2)


def test_frame_images_of_any_mode_become_rgb(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(folder / "a.png")  # grayscale
    Image.fromarray(np.full((8, 8, 4), (*BLUE, 100), np.uint8)).save(folder / "b.png")  # RGBA
    Image.fromarray(np.full((30, 10, 3), RED, np.uint8)).convert("P").save(folder / "c.bmp")
    read = data.read_clip(str(folder), SIZE)
    assert read.shape == (3, SIZE, SIZE, 3)
    np.testing.assert_allclose(frame_means(read), [(200,) * 3, BLUE, RED], atol=2)


def test_gif_clip_all_frames_or_evenly_subsampled(tmp_path):
    frames = solid_frames(40)
    path = tmp_path / "long.gif"
    write_gif(path, frames)
    read = data.read_clip(str(path), SIZE)
    assert read.shape == (32, SIZE, SIZE, 3)  # the default max_frames, clips.MAX_FRAMES
    expected = frames[data.subsample_indices(40, 32)]
    np.testing.assert_allclose(frame_means(read), frame_means(expected), atol=1)
    assert data.read_clip(str(path), SIZE, max_frames=40).shape[0] == 40
    assert data.subsample_indices(40, 5).tolist() == [0, 10, 20, 29, 39]


def test_features_npy_and_npz(tmp_path):
    features = np.random.default_rng(0).normal(size=(50, 7))
    np.save(tmp_path / "a.npy", features)
    np.savez(tmp_path / "b.npz", features=features.astype(np.float16), other=np.zeros(3))
    read = data.read_clip(str(tmp_path / "a.npy"), SIZE)
    assert read.dtype == np.float32 and read.shape == (32, 7)
    np.testing.assert_allclose(read, features[data.subsample_indices(50, 32)], rtol=1e-6)
    archived = data.read_clip(str(tmp_path / "b.npz"), SIZE, max_frames=50)
    np.testing.assert_allclose(archived, features, atol=1e-2)


def test_video_with_opencv_converts_bgr_and_subsamples(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace(VideoCapture=FakeCapture))
    (tmp_path / "clip.mp4").write_bytes(b"whatever OpenCV reads")
    read = data.read_clip(str(tmp_path / "clip.mp4"), SIZE, max_frames=4)
    assert read.shape == (4, SIZE, SIZE, 3)
    np.testing.assert_allclose(frame_means(read), frame_means(solid_frames(12)[[0, 4, 7, 11]]),
                               atol=1)
    assert FakeCapture.opened[-1].released
    monkeypatch.setattr(FakeCapture, "rgb_frames", solid_frames(2, [RED, BLUE]))
    np.testing.assert_allclose(frame_means(data.read_clip(str(tmp_path / "clip.mp4"), SIZE)),
                               [RED, BLUE], atol=1)
    (tmp_path / "broken.mp4").write_bytes(b"")
    with pytest.raises(VideoDataError, match=r"broken\.mp4: OpenCV cannot open"):
        data.read_clip(str(tmp_path / "broken.mp4"), SIZE)
    monkeypatch.setattr(FakeCapture, "rgb_frames", [])
    with pytest.raises(VideoDataError, match=r"clip\.mp4: no frames"):
        data.read_clip(str(tmp_path / "clip.mp4"), SIZE)


def test_video_with_imageio_when_opencv_is_missing(tmp_path, monkeypatch):
    v3 = types.ModuleType("imageio.v3")
    v3.imiter = lambda path: iter([np.full((9, 9), 50, np.uint8),
                                   np.full((9, 9, 4), (*GREEN, 255), np.uint8)])
    package = types.ModuleType("imageio")
    package.v3 = v3
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setitem(sys.modules, "imageio", package)
    monkeypatch.setitem(sys.modules, "imageio.v3", v3)
    (tmp_path / "clip.webm").write_bytes(b"whatever imageio reads")
    read = data.read_clip(str(tmp_path / "clip.webm"), SIZE)
    np.testing.assert_allclose(frame_means(read), [(50,) * 3, GREEN], atol=1)

    def failing(path):
        raise RuntimeError("Could not find a backend to open `clip.webm`")
        yield

    v3.imiter = failing
    with pytest.raises(VideoDataError, match=r"clip\.webm: imageio cannot decode .*backend"):
        data.read_clip(str(tmp_path / "clip.webm"), SIZE)


def test_real_mp4_decoded_with_imageio(tmp_path, monkeypatch):
    import imageio.v3 as imageio

    monkeypatch.setitem(sys.modules, "cv2", None)  # the imageio branch even if OpenCV is there
    size = 32
    written = [solid_frames(1, [colour], size, size)[0] for colour in (RED, GREEN, BLUE)]
    squares = []  # then a red 8 x 8 square moving right 8 pixels a frame on blue
    for step in range(4):
        frame = np.array(solid_frames(1, [BLUE], size, size)[0])
        square = np.zeros((size, size), bool)
        square[8:16, 8 * step:8 * step + 8] = True
        frame[square] = RED
        written.append(frame)
        squares.append(square)
    path = tmp_path / "clip.mp4"
    imageio.imwrite(path, np.stack(written), fps=10, codec="libx264")

    read = data.read_clip(str(path), size)
    assert read.shape == (7, size, size, 3) and read.dtype == np.uint8
    # H.264 in yuv420p is lossy: flat areas come back within 8 levels of 255
    # (6 at most with this ffmpeg), but colour bleeds up to 16 levels a few
    # pixels around the square's edges, so those pixels are left out.
    tolerance = 8
    for frame, colour in zip(read[:3], (RED, GREEN, BLUE)):
        np.testing.assert_allclose(frame, np.broadcast_to(colour, frame.shape), atol=tolerance)
    for frame, square, step in zip(read[3:], squares, range(4)):
        assert np.array_equal(frame[..., 0] > 128, square)  # the square where it was written
        inner = frame[10:14, 8 * step + 2:8 * step + 6]
        np.testing.assert_allclose(inner, np.broadcast_to(RED, inner.shape), atol=tolerance)
        far = np.ones((size, size), bool)
        far[5:19, max(8 * step - 3, 0):8 * step + 11] = False
        np.testing.assert_allclose(frame[far], np.broadcast_to(BLUE, frame[far].shape),
                                   atol=tolerance)
    # Subsampled evenly: frames 0, 2, 4 and 6.
    np.testing.assert_array_equal(data.read_clip(str(path), size, max_frames=4), read[[0, 2, 4, 6]])


def test_video_without_decoder_names_the_file_and_the_packages(tmp_path, no_video_decoder):
    path = tmp_path / "clip.avi"
    path.write_bytes(b"RIFF....AVI ")
    with pytest.raises(VideoDataError) as raised:
        data.read_clip(str(path), SIZE)
    message = str(raised.value)
    assert message.startswith(f"{path}: cannot decode a .avi video")
    assert "opencv-python" in message and "imageio" in message and "GIF" in message


# ------------------------------------------------------------ clip folder
def test_folder_of_every_clip_kind_with_several_captions(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_gif(folder / "gif.gif", solid_frames(6, [RED] * 3 + [GREEN] * 3))
    frames_dir = folder / "frames" / "take1"
    frames_dir.mkdir(parents=True)
    for i, colour in enumerate([BLUE, BLUE, RED]):
        Image.fromarray(solid_frames(1, [colour])[0]).save(frames_dir / f"{i:03d}.png")
    captions = write_captions(tmp_path / "captions.tsv", [
        "gif.gif\ta red thing turns green",
        "frames/take1/\t  a blue   thing , then red ",
        'gif.gif,"quoted, with a comma"',
        "frames/take1\tunquoted, with a comma",
    ], header="clip\tcaption")
    corpus = load(folder, captions)
    assert corpus.skipped == 0 and corpus.dev == [] and corpus.test == []
    by_name = {e.source: e for e in corpus.train}
    assert list(by_name) == ["gif.gif", "frames/take1"]
    assert by_name["gif.gif"].captions == ["a red thing turns green", "quoted, with a comma"]
    assert by_name["frames/take1"].captions == ["a blue thing , then red",
                                                "unquoted, with a comma"]
    np.testing.assert_allclose(frame_means(by_name["gif.gif"].frames),
                               [RED] * 3 + [GREEN] * 3, atol=1)
    np.testing.assert_allclose(frame_means(by_name["frames/take1"].frames),
                               [BLUE, BLUE, RED], atol=1)
    summary = corpus.summary()
    assert "train 2 clips (4 captions)" in summary
    assert f"3-6 frames, {SIZE}x{SIZE} frames" in summary


def test_folder_of_features(tmp_path):
    folder = tmp_path / "features"
    folder.mkdir()
    rng = np.random.default_rng(1)
    np.save(folder / "a.npy", rng.normal(size=(10, 5)))
    np.savez(folder / "b.npz", features=rng.normal(size=(40, 5)))
    captions = write_captions(tmp_path / "captions.csv", ["a.npy,first", "b.npz,second"],
                              header=None)
    corpus = load(folder, captions, max_frames=20)
    lengths = {e.source: (e.frames, e.features.shape) for e in corpus.train}
    assert lengths == {"a.npy": (None, (10, 5)), "b.npz": (None, (20, 5))}
    assert "features of 5" in corpus.summary()


def test_header_is_detected_only_as_the_first_line(tmp_path):
    folder, lines = good_folder(tmp_path, count=2)
    for header in ("clip,caption", "\ufeffvideo,caption", "path\tcaption", None):
        corpus = load(folder, write_captions(tmp_path / "c.txt", lines, header=header))
        assert [e.captions for e in corpus.train] == [["a good clip number 0"],
                                                      ["a good clip number 1"]]
    late = write_captions(tmp_path / "late.txt", lines + ["clip,caption"])
    with pytest.raises(VideoDataError, match=re.escape(f"{late}:4: clip 'clip'")):
        load(folder, late)


def _write_text(path):
    path.write_text("this is not a clip\n")


def _truncated_gif(path):
    encoded = data.encode_gif(np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3),
                                                                dtype=np.uint8))
    path.write_bytes(encoded[:len(encoded) // 3])


def _empty_folder(path):
    path.mkdir()
    (path / "readme.txt").write_text("no frames here")


def _folder_with_bad_frame(path):
    path.mkdir()
    Image.fromarray(solid_frames(1)[0]).save(path / "0.png")
    (path / "1.png").write_bytes(b"\x89PNG broken")


def _array_3d(path):
    np.save(path, np.zeros((4, 3, 2)))


def _no_rows(path):
    np.save(path, np.zeros((0, 8)))


def _nan_features(path):
    np.save(path, np.full((3, 8), np.nan))


def _npz_without_features(path):
    np.savez(path, frames=np.zeros((3, 8)))


def _corrupt_npy(path):
    path.write_bytes(b"\x93NUMPY garbage")


def _features_among_frames(path):
    np.save(path, np.zeros((3, 8)))


def _video(path):
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")


BAD_LINES = {
    # name: (the caption line, how to write its clip or None, message pattern)
    "missing clip": ("nowhere.gif,a clip that is not there", None, "no such clip"),
    "truncated gif": ("cut.gif,a cut clip", _truncated_gif, "not a readable GIF"),
    "text named gif": ("fake.gif,a fake clip", _write_text, "not a readable GIF"),
    "unknown kind": ("notes.txt,a text file", _write_text, "not a clip: expected"),
    "no frames": ("empty,an empty folder", _empty_folder, "no frames"),
    "bad frame": ("broken,a broken frame", _folder_with_bad_frame, "not a readable frame"),
    "3-d features": ("cube.npy,a cube", _array_3d, r"shape \[T, D\]"),
    "no feature rows": ("rows.npy,no rows", _no_rows, "no frames"),
    "nan features": ("nan.npy,nan", _nan_features, "NaN"),
    "npz without key": ("keys.npz,keys", _npz_without_features, "no 'features' array"),
    "corrupt npy": ("corrupt.npy,corrupt", _corrupt_npy, "not a readable numpy file"),
    "features among frames": ("feats.npy,features", _features_among_frames,
                              "features of size 8 where the first clip, 'good0.gif', has frames"),
    "video, no decoder": ("movie.mp4,a movie", _video, "no video decoder"),
    "empty caption": ("good0.gif,   ", None, "empty caption"),
    "quoted empty caption": ('good0.gif,""', None, "empty caption"),
    "no separator": ("good0.gif a caption without a comma", None, "malformed line"),
    "no clip name": (",a caption without a clip", None, "empty clip name"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_each_bad_line_raises_naming_file_and_line_or_is_skipped(tmp_path, case,
                                                                 no_video_decoder):
    line, write_bad_clip, pattern = BAD_LINES[case]
    folder, lines = good_folder(tmp_path, count=3)
    corpus = assert_bad_line_named_then_skipped(
        folder, "clip,caption", lines, line, write_bad_clip, pattern, load, VideoDataError,
        named=write_bad_clip is not None or case == "missing clip")
    assert [e.source for e in corpus.train] == ["good0.gif", "good1.gif", "good2.gif"]


def test_feature_size_differing_from_the_first_clip(tmp_path):
    folder = tmp_path / "features"
    folder.mkdir()
    for name, size in (("a.npy", 6), ("b.npy", 6), ("odd.npy", 4), ("c.npy", 6)):
        np.save(folder / name, np.ones((3, size)))
    captions = write_captions(tmp_path / "captions.txt",
                              ["a.npy,one", "b.npy,two", "odd.npy,three", "c.npy,four",
                               "odd.npy,five"])
    with pytest.raises(VideoDataError, match=re.escape(
            f"{captions}:4: clip 'odd.npy': {folder / 'odd.npy'}: features of size 4 where "
            f"the first clip, 'a.npy', has features of size 6")):
        load(folder, captions)
    corpus = load(folder, captions, skip_bad_lines=True)
    # Every line of the bad clip counts.
    assert corpus.skipped == 2
    assert [e.source for e in corpus.train] == ["a.npy", "b.npy", "c.npy"]


def test_a_bad_first_clip_does_not_set_the_kind(tmp_path):
    folder, lines = good_folder(tmp_path, count=2)
    _truncated_gif(folder / "cut.gif")
    captions = write_captions(tmp_path / "captions.txt", ["cut.gif,first"] + lines)
    corpus = load(folder, captions, skip_bad_lines=True)
    assert corpus.skipped == 1 and len(corpus.train) == 2


def test_invalid_utf8_line_raises_or_is_skipped(tmp_path):
    folder, lines = good_folder(tmp_path, count=2)
    captions = tmp_path / "captions.txt"
    captions.write_bytes(("clip,caption\n" + lines[0] + "\n").encode("utf-8")
                         + b"good1.gif,caf\xe9\n" + (lines[1] + "\n").encode("utf-8"))
    with pytest.raises(VideoDataError, match=re.escape(f"{captions}:3: not valid UTF-8")):
        load(folder, str(captions))
    corpus = load(folder, str(captions), skip_bad_lines=True)
    assert corpus.skipped == 1 and len(corpus.train) == 2


def test_missing_inputs_and_empty_splits_are_refused(tmp_path):
    folder, lines = good_folder(tmp_path, count=1)
    captions = write_captions(tmp_path / "captions.txt", lines)
    with pytest.raises(VideoDataError, match="no such captions file"):
        data.load_folder(str(folder), str(tmp_path / "absent.txt"), SIZE)
    with pytest.raises(VideoDataError, match="no such clips folder"):
        data.load_folder(str(tmp_path / "absent"), captions, SIZE)
    with pytest.raises(VideoDataError, match="split is empty"):
        data.load_folder(str(folder), captions, SIZE)
    only_bad = write_captions(tmp_path / "bad.txt", ["nowhere.gif,gone"])
    with pytest.raises(VideoDataError, match="no usable captioned clips"):
        load(folder, only_bad, skip_bad_lines=True)


def test_split_is_a_stable_hash_of_the_clip_name(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    gif = data.encode_gif(solid_frames(2))
    names = [f"clip_{i:03d}.gif" for i in range(40)]
    for name in names:
        (folder / name).write_bytes(gif)
    lines = [f"{name},caption {k} of {name}" for k in range(2) for name in names]
    corpus = data.load_folder(str(folder), write_captions(tmp_path / "c.txt", lines), SIZE,
                              dev_fraction=0.2, test_fraction=0.2)
    assert corpus.train and corpus.dev and corpus.test

    def expected_split(name):
        bucket = zlib.crc32(name.encode("utf-8")) % 10_000 / 10_000
        return "test" if bucket < 0.2 else "dev" if bucket < 0.4 else "train"

    membership = {e.source: split for split in ("train", "dev", "test")
                  for e in getattr(corpus, split)}
    assert membership == {name: expected_split(name) for name in names}
    for example in all_examples(corpus):
        assert example.captions == [f"caption {k} of {example.source}" for k in range(2)]


def test_docstring_examples():
    result = doctest.testmod(data, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
