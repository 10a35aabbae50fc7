"""The `keras-attention` command line, run in-process on the untrained
exports of conftest.py: its answers must equal `ExportedModel.predict`'s
on the same inputs (an independent path), whatever the batching."""

import importlib.abc
import importlib.machinery
import io
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from serving_exports import png_bytes
from keras_attention import cli
from keras_attention.serving import exported_model

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
    assert_error(2, capsys.readouterr().err, 'pip install "keras-attention[serve]"')


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
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert output_lines(result.stdout.decode()) == expected
