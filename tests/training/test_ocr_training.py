"""Text recognition end to end on generated lines (a trained small model,
about a minute on 2 CPU cores): it reads beyond chance; the report's scores
and localization recounted from the answers; the export in a process that
cannot import this project; step signatures giving the whole answers;
the `read` command; the server answering over HTTP with continuous
batching; `--export-only` giving the same export."""

import base64
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_ocr_data import edit_distance

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Lines of one character (max_characters=1: the generator's single digits)
# are what a small model learns to read in seconds; longer lines need
# thousands of steps before the attention finds its way along them. Chance:
# writing the most frequent digit gets 9 in 10 wrong (CER 90%), writing
# nothing all (100%). The fixture's model (360 steps) got greedy CER 16.7%
# on 48 lines and put its attention on the digit for all 40 digits read
# right (chance 0.25); the thresholds ask for half of chance's errors and
# twice its hits.
CER_THRESHOLD = 45.0


def small_config(**changes):
    from caption_task_run import tiny_config
    from training.ocr.config import OcrConfig, PRESETS

    values = dict(train_lines=2000, dev_lines=32, test_lines=48, image_width=64,
                  max_characters=1, units=64, embedding_dim=16, attention_units=32,
                  cnn_filters=8, batch_size=32, steps_per_epoch=60, epochs=6,
                  learning_rate=0.005, label_smoothing=0.0, checkpoint_steps=1000,
                  plot_examples=2, eval_batch_size=16)
    values.update(changes)
    return tiny_config(OcrConfig, PRESETS, **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from caption_task_run import train_and_keep_exporter
    from training.ocr import train as train_lib

    return train_and_keep_exporter(train_lib, "TextReader", small_config(),
                                   str(tmp_path_factory.mktemp("ocr")))


def png(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def greedy_answers(trained):
    """The in-process greedy answers for the test lines' PNGs, as the
    evaluation batches them: one dict of numpy values per line."""
    import tensorflow as tf

    reader, batch = trained["captioner"], trained["config"].eval_batch_size
    pngs = [png(example.image) for example in trained["corpus"].test]
    rows = []
    for start in range(0, len(pngs), batch):
        out = {k: v.numpy() for k, v in reader.greedy(tf.constant(pngs[start:start + batch]))
               .items()}
        rows += [{k: v[i] for k, v in out.items()} for i in range(len(out["text"]))]
    return rows


def test_reads_beyond_chance_and_the_scores_recount(trained):
    from caption_task_run import read_lines

    report, workdir = trained["report"], trained["workdir"]
    references = [example.text for example in trained["corpus"].test]
    assert read_lines(workdir, "test.references.txt") == references
    for name in ("greedy", "beam2"):
        hypotheses = read_lines(workdir, f"test.hypotheses.{name}.txt")
        errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
        cer = 100.0 * errors / sum(map(len, references))
        assert report[name]["cer"] == pytest.approx(cer, abs=0.01), name
        exact = 100.0 * sum(r == h for r, h in zip(references, hypotheses)) / len(references)
        assert report[name]["line_accuracy"] == pytest.approx(exact, abs=0.01), name
    assert report["greedy"]["cer"] < CER_THRESHOLD, report["greedy"]
    assert report["greedy"]["line_accuracy"] > 0, report["greedy"]


def test_localization_equals_a_count_over_the_boxes(trained, greedy_answers):
    """Recount: for each reference character the answer reproduces at the
    same place, whether its peak column's pixels overlap the box."""
    report, test = trained["report"], trained["corpus"].test
    width = trained["config"].image_width
    hits = chance = total = 0
    for example, answer in zip(test, greedy_answers):
        text = answer["text"].decode()
        assert text == "".join(t.decode() for t in answer["tokens"][:answer["length"]])
        if len(text) != len(example.text):
            continue
        columns = answer["attention"].shape[-1]
        for position, (read, wanted) in enumerate(zip(text, example.text)):
            box = example.boxes[position]
            if read != wanted or box is None:
                continue
            column = int(np.argmax(answer["attention"][position, 0]))
            pixel_size = width / columns
            on_box = [c * pixel_size < box[2] and (c + 1) * pixel_size > box[0]
                      for c in range(columns)]
            hits += on_box[column]
            chance += np.mean(on_box)
            total += 1
    localization = report["localization"]
    assert total > 0
    # One-character lines: every character read right is an answer of the
    # right length, so the recount covers all the report counted.
    assert localization["characters"] == total
    assert localization["hit_rate"] == pytest.approx(hits / total, abs=1e-4)
    assert localization["hit_chance"] == pytest.approx(chance / total, abs=1e-4)
    assert localization["hit_rate"] >= 2 * localization["hit_chance"], localization


def test_report_plots_and_examples(trained):
    report = trained["report"]
    assert len(report["plots"]) == 2
    for path in report["plots"]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    for example in report["examples"]:
        lines = example["attention"].split("\n") if example["text"] else []
        assert [line.split("  <-")[0] for line in lines] == [
            "␣" if c == " " else c for c in example["text"]]


def test_export_in_a_fresh_process_equals_in_process(trained, tmp_path):
    import tensorflow as tf

    from caption_task_run import read_lines, texts
    from export_check import check_metadata_matches_signatures, run_in_fresh_process

    reader, test, config = trained["captioner"], trained["corpus"].test, trained["config"]
    inputs = [png(example.image) for example in test[:4]]
    # The same line twice as large, as a client might send it: resized in the graph.
    from PIL import Image

    big = Image.fromarray(test[0].image).resize((2 * config.image_width,
                                                 2 * config.image_height))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    inputs.append(buffer.getvalue())
    out = run_in_fresh_process(trained["report"]["export"],
                               {"image_bytes": {"bytes": [b.decode("latin-1") for b in inputs]}},
                               cwd=tmp_path)
    check_metadata_matches_signatures(out)
    metadata = out["metadata"]
    assert metadata["task"] == "text_recognition"
    assert (metadata["image_height"], metadata["image_width"]) == (32, 64)
    assert metadata["grid_shape"] == [1, 16]
    greedy, beam = out["signatures"]["serving_default"], out["signatures"]["beam_search"]
    assert greedy["text"] == texts(reader.greedy(tf.constant(inputs)))
    assert beam["text"] == texts(reader.beam(tf.constant(inputs)))
    for text, tokens, length in zip(greedy["text"], greedy["tokens"], greedy["length"]):
        assert text == "".join(tokens[:length])  # characters joined as written
    attention = np.asarray(greedy["attention"])
    for row, length in zip(attention, greedy["length"]):
        np.testing.assert_allclose(row[:length].sum(axis=(1, 2)), 1.0, atol=1e-4)
    assert greedy["text"][:4] == read_lines(trained["workdir"], "test.hypotheses.greedy.txt")[:4]
    # A line upscaled 2x and resized back reads (nearly) the same.
    assert edit_distance(greedy["text"][4], greedy["text"][0]) <= 1


def test_step_signatures_give_the_whole_answers(trained):
    import tensorflow as tf

    from step_check import check_export

    images = tf.constant([png(example.image) for example in trained["corpus"].test[:3]])
    check_export(trained["report"]["export"], "encode", "serving_default", "beam_search",
                 {"image_bytes": images})


def test_read_command_prints_the_export_answers_and_plots(trained, tmp_path, capsys):
    import tensorflow as tf

    from caption_task_run import texts
    from keras_attention import cli

    paths = []
    for index, example in enumerate(trained["corpus"].test[:2]):
        path = tmp_path / f"line{index}.png"
        path.write_bytes(png(example.image))
        paths.append(str(path))
    expected = texts(trained["captioner"].greedy(
        tf.constant([open(p, "rb").read() for p in paths])))
    status = cli.main(["read", "--model", trained["report"]["export"], "--plot",
                       str(tmp_path / "plots"), *paths])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.splitlines() == [f"{p}\t{t}" for p, t in zip(paths, expected)]
    assert sorted(os.listdir(tmp_path / "plots")) == ["0001-line0.png", "0002-line1.png"]
    # A captioning command on a text reader names the export's task.
    status = cli.main(["caption", "--model", trained["report"]["export"], paths[0]])
    out, err = capsys.readouterr()
    assert status == 2 and "'text_recognition' model" in err, err
    assert "keras-attention read" in err, err


def test_served_with_continuous_batching_answers_as_the_export(trained):
    import concurrent.futures

    import tensorflow as tf

    from server_process import running_server

    reader = trained["captioner"]
    images = [png(example.image) for example in trained["corpus"].test[:6]]
    expected = reader.greedy(tf.constant(images))
    base = os.path.dirname(trained["report"]["export"])
    with running_server("--model_name", "reader", "--model_base_path", base,
                        "--continuous_batching", "--max_batch_size", "4") as (client, _):
        def ask(image):
            return client.post("/v1/models/reader:predict",
                               {"instances": [{"b64": base64.b64encode(image).decode()}]})

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(ask, images))
    for row, (status, answer) in enumerate(answers):
        assert status == 200, answer
        prediction = answer["predictions"][0]
        assert prediction["text"] == expected["text"][row].numpy().decode()
        length = int(expected["length"][row])
        np.testing.assert_allclose(np.asarray(prediction["attention"]),
                                   expected["attention"][row, :length].numpy(), atol=1e-5)


def test_export_only_gives_the_same_answers(trained, tmp_path):
    import shutil

    import tensorflow as tf

    workdir = str(tmp_path / "copy")
    shutil.copytree(trained["workdir"], workdir, ignore=shutil.ignore_patterns("export"))
    done = subprocess.run(
        [sys.executable, "-m", "training.ocr", "--workdir", workdir, "--export-only"],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    version = done.stdout.strip().splitlines()[-1].split()[-1]
    loaded = tf.saved_model.load(version)
    images = tf.constant([png(example.image) for example in trained["corpus"].test[:4]])
    again = loaded.signatures["serving_default"](image_bytes=images)
    first = trained["captioner"].greedy(images)
    assert again["text"].numpy().tolist() == first["text"].numpy().tolist()
    with open(os.path.join(version, "assets.extra", "metadata.json")) as handle:
        assert json.load(handle)["task"] == "text_recognition"
