"""The `keras-attention` command line, run in-process on the untrained
exports of conftest.py: its answers must equal `ExportedModel.predict`'s
on the same inputs (an independent path), whatever the batching; and its
help, and the server's, say what each command and flag does."""

import argparse
import importlib.abc
import importlib.machinery
import io
import json
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

from server_process import imported_packages
from serving_exports import gif_bytes, png_bytes
from keras_attention import cli
from keras_attention.serving import exported_model, server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Inputs whose greedy answers are of several lengths (some empty) on the
# untrained translator.
LINES = ["dog", "", "the the the", "zebra unknown words here", "a green cat runs"]
_LOADED = {}


def load(path, version=None):
    """One `ExportedModel` per export for the whole session: loading is the
    slow part, and the CLI's own loading is what the error tests check."""
    key = (os.path.abspath(path), version)
    if key not in _LOADED:
        _LOADED[key] = _REAL_EXPORTED_MODEL(path, version)
    return _LOADED[key]


_REAL_EXPORTED_MODEL = exported_model.ExportedModel


@pytest.fixture(autouse=True)
def _cached_models(monkeypatch):
    monkeypatch.setattr(exported_model, "ExportedModel", load)


def run(argv, capsys, monkeypatch, stdin=""):
    """`main(argv)` with `stdin` as standard input: (status, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def predict(model_dir, signature, values):
    model = load(model_dir)
    name = next(iter(model.signature(signature).inputs))
    return model.predict(signature, {name: np.array(values, dtype=object)})


def texts(array):
    return [value.decode("utf-8") for value in array]


def output_lines(out):
    """stdout's lines, empty ones kept (an empty answer is an empty line)."""
    assert out.endswith("\n")
    return out[:-1].split("\n")


def assert_error(status, err, *fragments):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------- translate
def test_translate_from_stdin_prints_one_answer_per_line(translator_dir, capsys, monkeypatch):
    expected = texts(predict(translator_dir, "serving_default",
                             [line.encode() for line in LINES])["text"])
    assert expected[1] == "" and any(expected), expected  # empty in, empty out; not all empty

    status, out, err = run(["translate", "--model", translator_dir], capsys, monkeypatch,
                           stdin="".join(line + "\n" for line in LINES))

    assert status == 0, err
    assert output_lines(out) == expected


def test_translate_files_in_small_batches_equals_one_batch(translator_dir, tmp_path, capsys,
                                                           monkeypatch):
    first = write_lines(tmp_path / "first.txt", LINES[:2])
    second = write_lines(tmp_path / "second.txt", LINES[2:])
    expected = texts(predict(translator_dir, "serving_default",
                             [line.encode() for line in LINES])["text"])

    status, out, err = run(["translate", "--model", translator_dir, "--batch-size", "2",
                            first, second], capsys, monkeypatch)

    assert status == 0, err
    assert output_lines(out) == expected


def test_beam_prints_the_beam_signatures_best(translator_dir, capsys, monkeypatch):
    expected = texts(predict(translator_dir, "beam_search",
                             [line.encode() for line in LINES])["text"][:, 0])

    status, out, err = run(["translate", "--model", translator_dir, "--beam"], capsys,
                           monkeypatch, stdin="\n".join(LINES) + "\n")

    assert status == 0, err
    assert output_lines(out) == expected


def test_nbest_prints_n_hypotheses_per_input(translator_dir, capsys, monkeypatch):
    beam = predict(translator_dir, "beam_search", [line.encode() for line in LINES])

    status, out, err = run(["translate", "--model", translator_dir, "--nbest", "2"], capsys,
                           monkeypatch, stdin="\n".join(LINES) + "\n")

    assert status == 0, err
    lines = output_lines(out)
    assert len(lines) == 2 * len(LINES)
    for number, line in enumerate(lines):
        row, rank = divmod(number, 2)
        key, score, text = line.split("\t")
        assert key == str(row)
        assert float(score) == pytest.approx(float(beam["score"][row, rank]), abs=1e-4)
        assert text == beam["text"][row, rank].decode()


def test_json_fields_equal_predicts(translator_dir, capsys, monkeypatch):
    greedy = predict(translator_dir, "serving_default", [line.encode() for line in LINES])

    status, out, err = run(["translate", "--model", translator_dir, "--json"], capsys,
                           monkeypatch, stdin="\n".join(LINES) + "\n")

    assert status == 0, err
    records = [json.loads(line) for line in output_lines(out)]
    assert [r["input"] for r in records] == LINES
    for row, record in enumerate(records):
        length = int(greedy["length"][row])
        assert record["text"] == greedy["text"][row].decode()
        assert record["tokens"] == texts(greedy["tokens"][row, :length])
        assert record["length"] == length
        assert record["score"] == pytest.approx(float(greedy["score"][row]), abs=1e-6)
        assert "attention" not in record and "hypotheses" not in record


def test_json_nbest_with_attention_cuts_each_hypothesis_to_its_length(
        translator_dir, capsys, monkeypatch):
    beam = predict(translator_dir, "beam_search", [line.encode() for line in LINES])

    status, out, err = run(["translate", "--model", translator_dir, "--json", "--nbest", "2",
                            "--attention"], capsys, monkeypatch,
                           stdin="\n".join(LINES) + "\n")

    assert status == 0, err
    records = [json.loads(line) for line in output_lines(out)]
    for row, record in enumerate(records):
        source_length = int(beam["source_length"][row])
        assert record["source_tokens"] == texts(beam["source_tokens"][row, :source_length])
        assert len(record["hypotheses"]) == 2
        assert record["text"] == record["hypotheses"][0]["text"]
        for rank, hypothesis in enumerate(record["hypotheses"]):
            length = int(beam["length"][row, rank])
            assert hypothesis["text"] == beam["text"][row, rank].decode()
            assert hypothesis["tokens"] == texts(beam["tokens"][row, rank, :length])
            assert hypothesis["score"] == pytest.approx(float(beam["score"][row, rank]),
                                                        abs=1e-6)
            weights = np.array(hypothesis["attention"]).reshape(length, source_length)
            np.testing.assert_allclose(
                weights, beam["attention"][row, rank, :length, :source_length], atol=1e-5)
            assert hypothesis["attention_axes"] == ["output_token", "source_token"]


def test_plot_writes_one_png_per_input(translator_dir, tmp_path, capsys, monkeypatch):
    lines = ["dog", "the the the", "zebra unknown words here", ""]
    greedy = predict(translator_dir, "serving_default", [line.encode() for line in lines])
    assert list(greedy["length"][:3] > 0) == [True] * 3 and greedy["length"][3] == 0
    out_dir = tmp_path / "plots"

    status, out, err = run(["translate", "--model", translator_dir, "--plot", str(out_dir)],
                           capsys, monkeypatch, stdin="\n".join(lines) + "\n")

    assert status == 0, err
    assert sorted(os.listdir(out_dir)) == ["0001.png", "0002.png", "0003.png"]
    for name in os.listdir(out_dir):
        data = (out_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert "<stdin>:4: empty output, no attention plot" in err  # nothing to draw


def test_progress_bar_on_a_terminal_stderr_only(translator_dir, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status, out, _ = run(["translate", "--model", translator_dir, "--batch-size", "8"],
                         capsys, monkeypatch, stdin="\n" * 20)

    assert status == 0
    assert output_lines(out) == [""] * 20  # the bar never reaches stdout
    assert "/20" in terminal.getvalue()


# ----------------------------------------------------------------- caption
def test_caption_two_images_prefixes_each_path(captioner_dir, tmp_path, capsys, monkeypatch):
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"image{seed}.png"
        path.write_bytes(png_bytes(seed))
        paths.append(str(path))
    greedy = predict(captioner_dir, "serving_default", [png_bytes(1), png_bytes(2)])
    out_dir = tmp_path / "plots"

    status, out, err = run(["caption", "--model", captioner_dir, "--plot", str(out_dir),
                            *paths], capsys, monkeypatch)

    assert status == 0, err
    assert output_lines(out) == [f"{path}\t{text}" for path, text
                                 in zip(paths, texts(greedy["text"]))]
    assert sorted(os.listdir(out_dir)) == ["0001-image1.png", "0002-image2.png"]

    status, out, err = run(["caption", "--model", captioner_dir, paths[1]], capsys,
                           monkeypatch)
    assert status == 0, err
    assert output_lines(out) == [greedy["text"][1].decode()]  # one image: no prefix


# ------------------------------------------------------------------- video
def clip_answers(video_dir, signature, input_name, clips):
    """Each clip alone through the export's `signature` (no batch, no
    padding), fed by the input names the video export documents: the
    independent answers, (text, score), the command's must equal. Beam:
    the best."""
    import tensorflow as tf

    function = load(video_dir).function(signature)
    answers = []
    for clip in clips:
        dtype = tf.uint8 if input_name == "frames" else tf.float32
        out = function(**{input_name: tf.constant(clip[None], dtype),
                          "lengths": tf.constant([len(clip)], tf.int32)})
        answers.append((out["text"].numpy().reshape(-1)[0].decode("utf-8"),
                        float(out["score"].numpy().reshape(-1)[0])))
    return answers


def clip_texts(video_dir, signature, input_name, clips):
    return [text for text, _ in clip_answers(video_dir, signature, input_name, clips)]


def random_features(rng, frames, feature_dim):
    """Non-negative, as the frame encoder's (ReLU, pooled) features are; an
    untrained model says something of them."""
    return rng.uniform(0.0, 3.0, (frames, feature_dim))


def save_clips(tmp_path, clips, name):
    """Each clip as a .npy file, but the second as a .npz naming it `name`."""
    paths = []
    for number, clip in enumerate(clips):
        if number == 1:
            path = tmp_path / f"clip{number}.npz"
            np.savez(path, **{name: clip})
        else:
            path = tmp_path / f"clip{number}.npy"
            np.save(path, clip)
        paths.append(str(path))
    return paths


def test_video_frames_files_equal_the_frames_signatures(video_captioner_dir, tmp_path, capsys,
                                                        monkeypatch):
    rng = np.random.default_rng(11)
    # Several lengths in one batch (the command pads them); one of another size.
    clips = [rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
             for frames, size in ((5, 16), (2, 16), (7, 16), (3, 24))]
    paths = save_clips(tmp_path, clips, "frames")

    for flags, signature in (([], "serving_default"), (["--beam"], "beam_search")):
        expected = clip_texts(video_captioner_dir, signature, "frames", clips)
        assert any(expected), expected  # not all empty: the comparison says something

        status, out, err = run(["video", "--model", video_captioner_dir, *flags, *paths],
                               capsys, monkeypatch)

        assert status == 0, err
        assert output_lines(out) == [f"{path}\t{text}" for path, text in zip(paths, expected)]


def test_video_features_files_equal_the_features_signature(video_captioner_dir, tmp_path,
                                                           capsys, monkeypatch):
    feature_dim = load(video_captioner_dir).metadata["feature_dim"]
    rng = np.random.default_rng(12)
    # float64 (cast to the signature's float32); two batches of different lengths.
    clips = [random_features(rng, frames, feature_dim) for frames in (4, 1, 6)]
    paths = save_clips(tmp_path, clips, "features")
    expected = clip_answers(video_captioner_dir, "features_greedy", "features", clips)
    assert any(text for text, _ in expected), expected

    status, out, err = run(["video", "--model", video_captioner_dir, "--batch-size", "2",
                            "--json", *paths], capsys, monkeypatch)

    assert status == 0, err
    records = [json.loads(line) for line in output_lines(out)]
    assert [record["input"] for record in records] == paths
    for record, (text, score) in zip(records, expected):
        assert record["text"] == text
        assert record["score"] == pytest.approx(score, abs=1e-5)


def test_video_gifs_frames_and_features_in_one_run_keep_their_order(
        video_captioner_dir, tmp_path, capsys, monkeypatch):
    feature_dim = load(video_captioner_dir).metadata["feature_dim"]
    rng = np.random.default_rng(13)
    frames = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    features = random_features(rng, 3, feature_dim).astype("float32")
    gif = gif_bytes(14)
    (tmp_path / "a.gif").write_bytes(gif)
    np.save(tmp_path / "b.npy", frames)
    np.save(tmp_path / "c.npy", features)
    (tmp_path / "d.gif").write_bytes(gif)
    paths = [str(tmp_path / name) for name in ("a.gif", "b.npy", "c.npy", "d.gif")]
    gif_text = texts(predict(video_captioner_dir, "gif_greedy", [gif])["text"])[0]
    expected = [gif_text, *clip_texts(video_captioner_dir, "serving_default", "frames", [frames]),
                *clip_texts(video_captioner_dir, "features_greedy", "features", [features]),
                gif_text]
    out_dir = tmp_path / "plots"

    status, out, err = run(["video", "--model", video_captioner_dir, "--json", "--plot",
                            str(out_dir), *paths], capsys, monkeypatch)

    assert status == 0, err
    records = [json.loads(line) for line in output_lines(out)]
    assert [(r["input"], r["text"]) for r in records] == list(zip(paths, expected))
    assert all(r["length"] > 0 for r in records)  # so every kind's plot is drawn
    assert [r["plot"] for r in records] == [str(out_dir / f"{number:04d}-{name}.png")
                                            for number, name in enumerate("abcd", start=1)]
    for record in records:
        with open(record["plot"], "rb") as plot:
            assert plot.read(4) == b"\x89PNG"


def test_clip_kinds_are_the_ones_the_video_export_describes(video_captioner_dir):
    described = load(video_captioner_dir).metadata["signatures"]
    kinds = {info["kind"] for signature in described.values()
             for info in signature["inputs"].values()}
    assert kinds == {*cli.CLIP_INPUT_KINDS.values(), cli.FRAME_COUNT_KIND}


@pytest.mark.parametrize("array, flags, words", [
    (np.zeros((5, 16, 16, 3), "float32"), [], "frames are uint8 [T, H, W, 3]"),
    (np.zeros((5, 16, 16), "uint8"), [], "a clip is frames, uint8 [T, H, W, 3], or per-frame"),
    (np.zeros((0, 8), "float32"), [], "no frames (T = 0)"),
    (np.zeros((4, 5), "float32"), [], "features_greedy takes features [T, 8]"),
    (np.zeros((4, 8), "float32"), ["--input", "frames"], "frames are uint8 [T, H, W, 3]"),
    (np.zeros((4, 8), "int64"), [], "features are float [T, D]"),
], ids=["float-frames", "rank-3", "no-frames", "feature-size", "input-frames", "int-features"])
def test_a_clip_array_of_the_wrong_shape_or_dtype_is_named(video_captioner_dir, tmp_path,
                                                          capsys, monkeypatch, array, flags,
                                                          words):
    fine = tmp_path / "fine.npy"
    np.save(fine, np.zeros((3, 16, 16, 3), "uint8"))
    bad = tmp_path / "bad.npy"
    np.save(bad, array)

    status, out, err = run(["video", "--model", video_captioner_dir, *flags, str(fine),
                            str(bad)], capsys, monkeypatch)

    assert_error(status, err, f"{bad}: holds ", words)
    assert out == ""  # every file is checked before the first answer


def test_a_file_that_is_no_array_is_named(video_captioner_dir, tmp_path, capsys, monkeypatch):
    gif = tmp_path / "clip.gif"
    gif.write_bytes(gif_bytes(15))
    status, _, err = run(["video", "--model", video_captioner_dir, "--input", "features",
                          str(gif)], capsys, monkeypatch)
    assert_error(status, err, str(gif), "not a .npy or .npz file")


def test_a_features_model_says_it_takes_no_gifs_or_frames():
    """A model trained on precomputed features: its default signatures take
    features (training/video/export.py), and nothing takes GIFs or frames."""
    features_inputs = {"features": {"dtype": "float32", "shape": [-1, -1, 8],
                                    "kind": "frame_features"},
                       "lengths": {"dtype": "int32", "shape": [-1], "kind": "frame_count"}}
    description = "per-frame features [B, T, 8] and each clip's length"

    class FeaturesModel:
        path = "export/video_captioner/1"
        metadata = {"task": "video_captioning", "source": "features", "signatures": {
            "serving_default": {"decoding": "greedy", "inputs": features_inputs,
                                "description": description},
            "beam_search": {"decoding": "beam", "inputs": features_inputs,
                            "description": description}}}
        signatures = dict.fromkeys(["serving_default", "beam_search"])

        def signature(self, name):
            return exported_model.SignatureInfo(name, dict.fromkeys(features_inputs), {})

    model = FeaturesModel()
    assert cli.clip_route(model, "features", beam=True) == \
        cli.Route("beam_search", "features", "lengths")
    for kind in ("gif", "frames"):
        with pytest.raises(cli.CliError) as error:
            cli.clip_route(model, kind, beam=False)
        message = str(error.value)
        assert message.startswith(f"{model.path}: takes no {cli.CLIP_KIND_WORDS[kind]}")
        assert "trained on precomputed features" in message
        assert f"serving_default ({description})" in message


# ------------------------------------------------------------------ errors
def test_missing_model_dir(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "nowhere")
    status, _, err = run(["translate", "--model", missing], capsys, monkeypatch, stdin="a\n")
    assert_error(status, err, missing, "no such model directory")


def test_model_dir_without_versions(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty" / "not-a-version").mkdir(parents=True)
    status, _, err = run(["translate", "--model", str(tmp_path / "empty")], capsys,
                         monkeypatch, stdin="a\n")
    assert_error(status, err, str(tmp_path / "empty"), "holds no SavedModel")


def test_caption_on_a_translation_export_names_its_task(translator_dir, tmp_path, capsys,
                                                         monkeypatch):
    image = tmp_path / "image.png"
    image.write_bytes(png_bytes(3))
    status, out, err = run(["caption", "--model", translator_dir, str(image)], capsys,
                           monkeypatch)
    assert_error(status, err, "'translation'", "keras-attention translate")
    assert out == ""


def test_video_on_a_captioning_export_names_its_task(captioner_dir, tmp_path, capsys,
                                                     monkeypatch):
    clip = tmp_path / "clip.gif"
    clip.write_bytes(png_bytes(4))
    status, _, err = run(["video", "--model", captioner_dir, str(clip)], capsys, monkeypatch)
    assert_error(status, err, "'image_captioning'", "keras-attention caption")


def test_unreadable_file_is_named(translator_dir, tmp_path, capsys, monkeypatch):
    readable = write_lines(tmp_path / "fine.txt", ["dog"])
    missing = str(tmp_path / "missing.txt")
    status, out, err = run(["translate", "--model", translator_dir, readable, missing],
                           capsys, monkeypatch)
    assert_error(status, err, missing, "cannot read it")
    assert out == ""  # every file is read before the first answer


def test_bytes_that_are_not_an_image_name_the_file(captioner_dir, tmp_path, capsys,
                                                   monkeypatch):
    paths = [tmp_path / "fine.png", tmp_path / "notes.png", tmp_path / "also_fine.png"]
    paths[0].write_bytes(png_bytes(5))
    paths[1].write_bytes(b"not an image at all")
    paths[2].write_bytes(png_bytes(6))
    status, out, err = run(["caption", "--model", captioner_dir, *map(str, paths)], capsys,
                           monkeypatch)
    assert_error(status, err, str(paths[1]), "not an image", "Unknown image file format")
    assert str(paths[0]) + ":" not in err


def test_nbest_above_the_exports_hypotheses(translator_dir, capsys, monkeypatch):
    status, out, err = run(["translate", "--model", translator_dir, "--nbest", "3"], capsys,
                           monkeypatch, stdin="dog\n")
    assert_error(status, err, "--nbest 3", "at most 2")
    assert out == ""


def test_attention_without_json_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["translate", "--model", "m", "--attention"])
    assert exit_info.value.code == 2
    assert "--attention needs --json" in capsys.readouterr().err


# -------------------------------------------------------------------- help
def help_text(argv, capsys):
    """What `keras-attention ARGV` prints, `--help` among ARGV."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_command_with_its_line(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    descriptions = {name: command.help for name, command in cli.COMMANDS.items()}
    descriptions["serve"] = cli.SERVE_HELP
    assert set(descriptions) == {"translate", "caption", "read", "video", "serve"}

    out = help_text(["--help"], capsys)

    for name, description in descriptions.items():  # name and its help on one line
        assert re.search(rf"^ +{name} +{re.escape(description)}$", out, re.MULTILINE), out


def test_video_help_says_what_a_clip_may_be(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = " ".join(help_text(["video", "--help"], capsys).split())
    for words in ("animated GIF", ".npy/.npz", "uint8 [T, H, W, 3]", "float [T, D]",
                  "--input {auto,gif,frames,features}",
                  "A model trained on precomputed features takes features only"):
        assert words in out, words


def test_every_serve_flag_has_help_and_shows_its_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    options = [action for action in server.build_parser()._actions
               if action.option_strings and action.default is not argparse.SUPPRESS]
    assert len(options) >= 15  # every flag, --help aside

    out = help_text(["serve", "--help"], capsys)

    # Each option's entry: from its line to the next option's, lines joined.
    entries = {match.group(1): " ".join(match.group(2).split()) for match in re.finditer(
        r"^  (--\w+)(.*?)(?=^  -|^\S|\Z)", out, re.MULTILINE | re.DOTALL)}
    for action in options:
        flag = action.option_strings[0]
        assert action.help and action.help.strip(), f"{flag} has no help"
        assert flag in entries, out
        if action.default is not None:
            assert f"(default: {action.default}" in entries[flag], (flag, entries[flag])


def test_server_usage_names_how_it_was_started(capsys):
    assert help_text(["serve", "--help"], capsys).startswith("usage: keras-attention serve ")

    result = subprocess.run([sys.executable, "-m", "keras_attention.serving", "--help"],
                            capture_output=True, text=True, timeout=120, cwd=REPO)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m keras_attention.serving "), result.stdout


# ------------------------------------------------------------------- serve
def test_serve_hands_every_argument_to_the_server(monkeypatch):
    received = []
    server = types.ModuleType(cli.SERVER_MODULE)
    server.main = lambda argv: received.append(argv)
    monkeypatch.setitem(sys.modules, cli.SERVER_MODULE, server)

    assert cli.main(["serve", "--help", "--rest_api_port", "0"]) == 0
    assert received == [["--help", "--rest_api_port", "0"]]


def test_serve_without_its_extra_says_what_to_install(monkeypatch, capsys):
    class MissingStarlette(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        """Loads the server module as if starlette were not installed."""

        def find_spec(self, name, path=None, target=None):
            if name == cli.SERVER_MODULE:
                return importlib.machinery.ModuleSpec(name, self)
            return None

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            raise ModuleNotFoundError("No module named 'starlette'", name="starlette")

    monkeypatch.delitem(sys.modules, cli.SERVER_MODULE, raising=False)
    monkeypatch.setattr(sys, "meta_path", [MissingStarlette(), *sys.meta_path])

    assert cli.main(["serve", "--model_base_path", "x"]) == 2
    assert_error(2, capsys.readouterr().err, 'pip install "keras-attention-kit[serve]"')


# ----------------------------------------------------- the console script
def test_console_script_translates_stdin(translator_dir, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "keras-attention")
    assert os.path.exists(script), \
        f"{script} is missing: install the package (pip install -e . --no-deps)"
    source = write_lines(tmp_path / "input.txt", LINES)
    expected = texts(predict(translator_dir, "serving_default",
                             [line.encode() for line in LINES])["text"])

    with open(source, "rb") as stdin:
        result = subprocess.run([script, "translate", "--model", translator_dir], stdin=stdin,
                                capture_output=True, timeout=300,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                     "PYTHONPROFILEIMPORTTIME": "1"})

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert output_lines(result.stdout.decode()) == expected
    # TensorFlow alone: the Keras it would import behind it never loads.
    packages = imported_packages(result.stderr.decode())
    assert "tensorflow" in packages and "keras" not in packages
