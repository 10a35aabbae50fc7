"""Video captioning end to end on generated one-event clips (about two
minutes on 2 CPU cores): learning beyond chance, the report and plots,
temporal localization, the export in a process that cannot import this
project (frames, animated GIFs, features), frames of another size, bad
input, and resuming a run that was interrupted."""

import json
import os
import shutil

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
    from caption_task_run import tiny_config as task_tiny_config
    from training.video.config import PRESETS, VideoConfig

    # No checkpoints to write (60 of them cost about 6 s). Fewer steps, fewer
    # clips a step, or smaller units, and the verbs no longer look at their
    # event's frames or exact match falls under the threshold.
    values = dict(max_events=1, train_clips=2000, dev_clips=64, test_clips=200,
                  min_clip_frames=8, max_clip_frames=8, units=64, embedding_dim=32,
                  attention_units=32, temporal_units=32, batch_size=32, steps_per_epoch=100,
                  epochs=3, learning_rate=0.005, checkpoint_steps=1000, export_name="vid",
                  export_version=2, plot_examples=2)
    values.update(changes)
    return task_tiny_config(VideoConfig, PRESETS, **values)


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
    # (trial run: 0.87 against chance 0.58).
    assert loc["action_words"] > 0
    assert loc["action_hit_rate"] > loc["action_chance"] + 0.15


def test_report_files_and_plots(trained):
    from caption_task_run import check_exact_match_recount, check_plots_and_examples, read_lines

    report, workdir, test = trained["report"], trained["workdir"], trained["corpus"].test
    assert report["test_clips"] == trained["config"].test_clips == len(test)
    assert report["model"] == "attention"
    with open(os.path.join(workdir, "report.json"), encoding="utf-8") as handle:
        assert json.load(handle)["greedy"]["exact_match"] == report["greedy"]["exact_match"]
    assert len(read_lines(workdir, "test.hypotheses.greedy.txt")) == len(test)
    check_exact_match_recount(report, workdir, [example.captions for example in test],
                              trained["config"].beam_width)
    check_plots_and_examples(report)
    assert report["parameters"] > 0


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

    from caption_task_run import read_lines, texts
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
    assert sorted(metadata["signatures"]) == ["beam_search", "features_beam",
                                              "features_greedy", "gif_beam", "gif_greedy",
                                              "serving_default"]
    # Every signature ran on these inputs, but `decode_step` (test_step_signatures.py).
    assert sorted(out["signatures"]) == sorted(
        {*metadata["signatures"], "encode", "gif_encode", "features_encode"})
    for key, described in metadata["signatures"].items():
        assert described["axis_lengths"] == {"output_token": "length", "frame": "frame_count"}
        assert described["output_axes"]["frame_count"] == ["batch"]
        assert described["output_axes"]["attention"][-2:] == ["output_token", "frame"]
    assert set(metadata["signatures"]["gif_greedy"]["inputs"]) == {"video_bytes"}

    in_greedy = captioner.greedy(tf.constant(frames), tf.constant(lengths))
    in_beam = captioner.beam(tf.constant(frames), tf.constant(lengths))
    want_greedy, want_beam = texts(in_greedy), texts(in_beam)
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
    # Of the clips given whole, the captions are the evaluation's.
    whole = [row for row, clip in enumerate(clips)
             if len(clip) == len(trained["corpus"].test[row].frames)]
    hypotheses = read_lines(trained["workdir"], "test.hypotheses.greedy.txt")
    assert whole and [want_greedy[row] for row in whole] == [hypotheses[row] for row in whole]


def shrink_by_3(frames):
    """uint8 `[..., 3H, 3W, 3]` -> `[..., H, W, 3]` with the triangle (bilinear)
    filter stretched 3 times, as an antialiased shrink does: an output pixel
    weighs the 5 input pixels nearest its centre along each axis by 1/3, 2/3,
    1, 2/3, 1/3; the weights that fall past the edge are left out."""

    def along(values, axis):
        size = values.shape[axis] // 3
        weights = np.zeros((size, 3 * size))
        for out in range(size):
            for offset, weight in zip(range(-1, 4), (1 / 3, 2 / 3, 1, 2 / 3, 1 / 3)):
                if 0 <= 3 * out + offset < 3 * size:
                    weights[out, 3 * out + offset] = weight
        weights /= weights.sum(axis=1, keepdims=True)
        return np.moveaxis(np.tensordot(weights, np.moveaxis(values, axis, 0), 1), 0, axis)

    shrunk = along(along(frames.astype(np.float64), -3), -2)
    return np.clip(np.round(shrunk), 0, 255).astype(np.uint8)


def test_frames_of_another_size_are_resized(trained, rng):
    """Frames 3 times the training size are shrunk back with the antialiased
    bilinear filter the export documents. After a nearest upscale that
    filter blurs (each pixel takes in 1/9 of each neighbour), so the answer
    is the one for those blurred frames, not for the native ones."""
    import tensorflow as tf

    from caption_task_run import texts

    captioner = trained["captioner"]
    _, frames, lengths = clips_and_lengths(trained["corpus"], 6, rng)
    bigger = frames.repeat(3, axis=2).repeat(3, axis=3)  # nearest upscale
    out = captioner.greedy(tf.constant(bigger), tf.constant(lengths))
    assert out["attention"].shape[-1] == lengths.max()
    assert out["frame_count"].numpy().tolist() == lengths.tolist()
    want = captioner.greedy(tf.constant(shrink_by_3(bigger)), tf.constant(lengths))
    assert texts(out) == texts(want)
    # A few pixels on .5 ties round the other way in TensorFlow's float32
    # filter (7e-4 at most over the 200 test clips); the native frames' answer
    # is 0.03 (median) to 0.19 away.
    np.testing.assert_allclose(out["attention"].numpy(), want["attention"].numpy(), atol=5e-3)


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


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    import keras

    from training.video import train as train_lib

    straight, workdir = str(tmp_path / "straight"), str(tmp_path / "run")

    class CopyAt(keras.callbacks.Callback):
        """Copies the workdir as a run killed after step 7 would leave it:
        one training run fewer than crashing a second one there."""

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) == 7:
                shutil.copytree(straight, workdir)

    # Small and quick to trace (no recurrent loop but the decoder's): what is
    # tested is the task's resumable data stream, not the model.
    config = tiny_config(train_clips=96, dev_clips=16, test_clips=4, min_clip_frames=8,
                         max_clip_frames=10, units=16, embedding_dim=8, attention_units=8,
                         cnn_filters=4, temporal_encoder="none", decoder="fast",
                         batch_size=8, steps_per_epoch=8, epochs=2, checkpoint_steps=5,
                         dropout=0.0)
    corpus = train_lib.load_corpus(config)
    reference, _ = train_lib.train(config, straight, corpus, log=lambda *a: None,
                                   callbacks=[CopyAt()])
    with open(os.path.join(workdir, "checkpoints", "latest.json"), encoding="utf-8") as handle:
        assert json.load(handle)["step"] == 5
    logs = []
    result, _ = train_lib.train(config, workdir, corpus, log=logs.append)
    assert any("at step 5" in line for line in logs), logs
    assert result.steps == reference.steps == 16
    # Resumed on the batches it would have had next: the weights of a run never stopped.
    for got, want in zip(result.model.get_weights(), reference.model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
