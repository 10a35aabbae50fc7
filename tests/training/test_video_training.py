"""Video captioning end to end on generated one-event clips (about three
minutes on 2 CPU cores): learning beyond chance, the report and plots,
temporal localization, the export in a process that cannot import this
project (frames, animated GIFs, features), bad input, and resuming a run
that was interrupted."""

import dataclasses
import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# One-event clips have 5 colours x 3 shapes x (appears, disappears, 4 moves,
# 4 colours to turn) = 150 captions: chance exact match is 1/150 = 0.7%.
# This config (300 steps, the local temporal encoder) got 66.0% greedy exact
# match, BLEU-4 81.6, in a trial run (the BiGRU encoder: 45.5%, BLEU-4 64.5);
# the thresholds leave room for other machines' arithmetic.
EXACT_MATCH_THRESHOLD = 40.0


def tiny_config(**changes):
    from training.core import config as config_lib
    from training.video.config import PRESETS, VideoConfig

    config = config_lib.load(VideoConfig, PRESETS, "tiny")
    values = dict(max_events=1, train_clips=2000, dev_clips=64, test_clips=200,
                  min_clip_frames=8, max_clip_frames=8, units=64, embedding_dim=32,
                  attention_units=32, temporal_units=32, batch_size=32, steps_per_epoch=100,
                  epochs=3, learning_rate=0.005, export_name="vid", export_version=2,
                  plot_examples=2)
    values.update(changes)
    return dataclasses.replace(config, **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from caption_task_run import train_and_keep_exporter
    from training.video import train as train_lib

    return train_and_keep_exporter(train_lib, "VideoCaptioner", tiny_config(),
                                   str(tmp_path_factory.mktemp("video")))


def test_learns_one_event_clips_beyond_chance(trained):
    report = trained["report"]
    print({k: report[k] for k in ("greedy", "localization", "training")})
    assert report["greedy"]["exact_match"] >= EXACT_MATCH_THRESHOLD
    assert report["greedy"]["bleu4"] > 60.0
    beam = report[f"beam{trained['config'].beam_width}"]
    assert beam["exact_match"] >= EXACT_MATCH_THRESHOLD
    loc = report["localization"]
    assert loc["words"] > 0 and 0.0 <= loc["hit_rate"] <= 1.0 and 0.0 < loc["chance"] < 1.0
    # The words that tell what happens look at the frames where it happens
    # (trial run: 0.85 against chance 0.55).
    assert loc["action_words"] > 0
    assert loc["action_hit_rate"] > loc["action_chance"] + 0.15


def test_report_files_and_plots(trained):
    report, workdir = trained["report"], trained["workdir"]
    assert report["test_clips"] == trained["config"].test_clips
    assert report["model"] == "attention"
    with open(os.path.join(workdir, "report.json"), encoding="utf-8") as handle:
        assert json.load(handle)["greedy"]["exact_match"] == report["greedy"]["exact_match"]
    with open(os.path.join(workdir, "test.hypotheses.greedy.txt"), encoding="utf-8") as handle:
        assert len(handle.read().split("\n")) - 1 == report["test_clips"]
    assert report["plots"]
    for path in report["plots"]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert report["parameters"] > 0
    for example in report["examples"]:
        lines = example["attention"].split("\n") if example["caption"] else []
        assert [line.split()[0] for line in lines] == example["caption"].split()


def clips_and_lengths(corpus, count, rng):
    """`count` test clips, some cut short, padded with garbage frames to the
    longest: `(clips [T_b, H, W, 3] each, frames [B, T, H, W, 3], lengths [B])`."""
    clips = [example.frames[:keep] for example, keep in zip(corpus.test[:count],
                                                            [99, 5, 99, 3, 6, 2])]
    lengths = np.array([len(clip) for clip in clips], np.int32)
    frames = rng.integers(0, 256, (count, lengths.max(), *clips[0].shape[1:]), dtype=np.uint8)
    for row, clip in enumerate(clips):
        frames[row, :lengths[row]] = clip
    return clips, frames, lengths


def test_export_in_a_fresh_process_equals_in_process(trained, rng, tmp_path):
    import tensorflow as tf

    from export_check import check_metadata_matches_signatures, run_in_fresh_process
    from training.core.export import ops_without_cpu_kernel
    from training.video.data import encode_gif

    captioner = trained["captioner"]
    clips, frames, lengths = clips_and_lengths(trained["corpus"], 5, rng)
    gifs = [encode_gif(clip) for clip in clips]
    features = captioner.model.encoder.frame_features(frames).numpy()  # --> [B, T, D]
    out = run_in_fresh_process(trained["report"]["export"], {
        "frames": {"values": frames.tolist(), "dtype": "uint8"},
        "lengths": {"values": lengths.tolist(), "dtype": "int32"},
        "video_bytes": {"bytes": [gif.decode("latin-1") for gif in gifs]},
        "features": {"values": features.tolist(), "dtype": "float32"},
    }, cwd=tmp_path)
    check_metadata_matches_signatures(out)
    assert ops_without_cpu_kernel(trained["report"]["export"]) == []
    metadata = out["metadata"]
    assert metadata["task"] == "video_captioning" and metadata["max_frames"] == 32
    assert sorted(out["signatures"]) == ["beam_search", "features_beam", "features_greedy",
                                         "gif_beam", "gif_greedy", "serving_default"]
    for key, described in metadata["signatures"].items():
        assert described["axis_lengths"] == {"output_token": "length", "frame": "frame_count"}
        assert described["output_axes"]["frame_count"] == ["batch"]
        assert described["output_axes"]["attention"][-2:] == ["output_token", "frame"]
    assert set(metadata["signatures"]["gif_greedy"]["inputs"]) == {"video_bytes"}

    in_greedy = captioner.greedy(tf.constant(frames), tf.constant(lengths))
    in_beam = captioner.beam(tf.constant(frames), tf.constant(lengths))
    want_greedy = [t.decode() for t in in_greedy["text"].numpy()]
    want_beam = [[t.decode() for t in row] for row in in_beam["text"].numpy()]
    for greedy, beam in (("serving_default", "beam_search"), ("gif_greedy", "gif_beam"),
                         ("features_greedy", "features_beam")):
        got = out["signatures"][greedy]
        assert got["text"] == want_greedy, greedy  # lossless GIFs: the same frames
        assert got["frame_count"] == lengths.tolist()
        attention = np.asarray(got["attention"])  # --> [B, T_out, T']
        assert attention.shape[2] == lengths.max()
        np.testing.assert_allclose(attention, in_greedy["attention"].numpy(), atol=1e-5)
        for row, (length, frame_count) in enumerate(zip(got["length"], lengths)):
            np.testing.assert_allclose(attention[row, :length].sum(-1), 1.0, atol=1e-4)
            assert np.all(attention[row, :, frame_count:] == 0.0)
        assert out["signatures"][beam]["text"] == want_beam, beam
    assert want_greedy[0] == trained["corpus"].test[0].captions[0].replace(" ,", ",") or \
        trained["report"]["greedy"]["exact_match"] < 100


def test_frames_of_another_size_are_resized(trained, rng):
    import tensorflow as tf

    captioner = trained["captioner"]
    _, frames, lengths = clips_and_lengths(trained["corpus"], 2, rng)
    size = trained["config"].frame_size
    bigger = tf.image.resize(frames.reshape(-1, size, size, 3), (3 * size, 3 * size),
                             method="nearest")
    bigger = tf.cast(tf.reshape(bigger, (*frames.shape[:2], 3 * size, 3 * size, 3)), tf.uint8)
    out = captioner.greedy(bigger, tf.constant(lengths))
    assert out["attention"].shape[-1] == lengths.max()
    assert out["frame_count"].numpy().tolist() == lengths.tolist()
    assert all(text for text in out["text"].numpy())


def test_bad_input_fails_with_a_clear_error(trained):
    import tensorflow as tf

    from training.video.data import encode_gif

    captioner = trained["captioner"]
    functions = captioner.signature_functions
    size = trained["config"].frame_size
    frames = np.zeros((2, 4, size, size, 3), np.uint8)
    for call, message in (
            (lambda: captioner.greedy(frames, np.array([5, 2], np.int32)),
             "may not exceed the frames given"),
            (lambda: captioner.greedy(frames, np.array([0, 2], np.int32)),
             "at least 1 frame"),
            (lambda: captioner.greedy(frames[:, :0], np.array([1, 1], np.int32)),
             "at least one frame"),
            (lambda: captioner.greedy(frames, np.array([4], np.int32)),
             "one length per clip"),
            (lambda: captioner.beam(np.zeros((1, 33, size, size, 3), np.uint8),
                                    np.array([33], np.int32)),
             "at most 32 frames"),
            (lambda: functions["gif_greedy"](tf.constant([b"\x89PNG\r\n\x1a\n" + b"0" * 30])),
             "not a GIF"),
            (lambda: functions["gif_beam"](tf.constant([encode_gif(np.zeros((33, 8, 8, 3),
                                                                            np.uint8))])),
             "at most 32 frames"),
            (lambda: functions["features_greedy"](
                np.full((1, 3, captioner.feature_dim), np.nan, np.float32),
                np.array([2], np.int32)),
             "NaN or infinity")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            call()
    # The signatures' input specs refuse other dtypes and ranks, naming the spec.
    for frames_value, lengths_value in ((frames.astype(np.float32), np.array([4, 2], np.int32)),
                                        (frames[0], np.array([4], np.int32)),
                                        (frames, np.array([[4], [2]], np.int32))):
        with pytest.raises((TypeError, ValueError), match=r"TensorSpec|dtype|shape"):
            functions["serving_default"](frames=tf.constant(frames_value),
                                         lengths=tf.constant(lengths_value))
    # NaN in padding past a clip's length is padding: it changes nothing.
    features = np.zeros((1, 3, captioner.feature_dim), np.float32)
    clean = functions["features_greedy"](features, np.array([2], np.int32))
    features[0, 2] = np.nan
    padded = functions["features_greedy"](features, np.array([2], np.int32))
    assert padded["text"].numpy().tolist() == clean["text"].numpy().tolist()


def test_cli_captions_gif_files_as_the_gif_signatures_do(trained, rng, tmp_path, capsys):
    """`keras-attention video` on GIF files: the gif signatures' answers,
    n-best from gif_beam, and one attention strip per clip."""
    import tensorflow as tf

    from keras_attention import cli
    from training.video.data import encode_gif

    clips, _, _ = clips_and_lengths(trained["corpus"], 3, rng)
    paths = []
    for number, clip in enumerate(clips):
        paths.append(str(tmp_path / f"clip{number}.gif"))
        with open(paths[-1], "wb") as handle:
            handle.write(encode_gif(clip))
    functions = trained["captioner"].signature_functions
    gifs = tf.constant([encode_gif(clip) for clip in clips])
    want = [t.decode() for t in functions["gif_greedy"](gifs)["text"].numpy()]
    want_beam = [[t.decode() for t in row] for row in functions["gif_beam"](gifs)["text"].numpy()]
    export = trained["report"]["export"]

    assert cli.main(["video", "--model", export, "--json", "--plot", str(tmp_path / "plots"),
                     *paths]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == want
    assert [r["input"] for r in records] == paths
    for record in records:
        with open(record["plot"], "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"

    assert cli.main(["video", "--model", export, "--nbest", "2", "--json", *paths]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [[h["text"] for h in r["hypotheses"]] for r in records] == [b[:2] for b in want_beam]

    (tmp_path / "still.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 30)
    assert cli.main(["video", "--model", export, str(tmp_path / "still.png")]) == 2
    assert "still.png: not a clip the model can read" in capsys.readouterr().err


class Crash(Exception):
    pass


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    import keras

    from training.video import train as train_lib

    class CrashAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) == 7:
                raise Crash("crash at step 7")

    # Small and quick to trace (no recurrent loop but the decoder's): what is
    # tested is the task's resumable data stream, not the model.
    config = tiny_config(train_clips=96, dev_clips=16, test_clips=4, min_clip_frames=8,
                         max_clip_frames=10, units=16, embedding_dim=8, attention_units=8,
                         cnn_filters=4, temporal_encoder="none", decoder="fast",
                         batch_size=8, steps_per_epoch=8, epochs=2, checkpoint_steps=5,
                         dropout=0.0)
    corpus = train_lib.load_corpus(config)
    reference, _ = train_lib.train(config, str(tmp_path / "straight"), corpus,
                                   log=lambda *a: None)
    workdir, logs = str(tmp_path / "run"), []
    with pytest.raises(Crash):
        train_lib.train(config, workdir, corpus, log=logs.append, callbacks=[CrashAt()])
    with open(os.path.join(workdir, "checkpoints", "latest.json"), encoding="utf-8") as handle:
        assert json.load(handle)["step"] == 5
    result, _ = train_lib.train(config, workdir, corpus, log=logs.append)
    assert any("at step 5" in line for line in logs), logs
    assert result.steps == reference.steps == 16
    # Resumed on the batches it would have had next: the weights of a run never stopped.
    for got, want in zip(result.model.get_weights(), reference.model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
