"""The video captioning model without training: masking of padded frames,
the mean-pooled baseline against numpy, serialization, equal sizes, the
temporal localization metric and the text view of attention over time."""

import dataclasses
import doctest

import keras
import numpy as np
import pytest

from training.video import clips, evaluation, metrics
from training.video.clips import Event

# The mean-pooled model's attention is a softmax over one position, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis")


def small_config(**changes):
    from training.core import config as config_lib
    from training.video.config import PRESETS, VideoConfig

    config = config_lib.load(VideoConfig, PRESETS, "tiny")
    values = dict(units=12, embedding_dim=8, attention_units=8, cnn_filters=4, cnn_blocks=2,
                  temporal_units=6, frame_size=16, dropout=0.0)
    values.update(changes)
    return dataclasses.replace(config, **values)


def make_model(rng, vocab_size=12, frames_shape=(2, 6, 16, 16, 3), **changes):
    from training.video.model import build_model

    config = small_config(**changes)
    model = build_model(config, vocab_size)
    frames = rng.integers(0, 256, frames_shape).astype("uint8")
    model({"source": {"frames": frames, "lengths": np.full(frames_shape[:1], frames_shape[1])},
           "target_in": np.ones((frames_shape[0], 3), "int32")})
    return model


def call_with_attention(model, frames, lengths, target_in):
    logits, weights = model({"source": {"frames": frames, "lengths": lengths},
                             "target_in": target_in}, return_attention_scores=True)
    return keras.ops.convert_to_numpy(logits), keras.ops.convert_to_numpy(weights)


def decode(model, frames, lengths, method="greedy", **options):
    result = model.generate({"frames": frames, "lengths": np.asarray(lengths, "int32")},
                            start_token=2, end_token=3, max_length=5, method=method, **options)
    return (keras.ops.convert_to_numpy(result.ids), keras.ops.convert_to_numpy(result.lengths),
            keras.ops.convert_to_numpy(result.attention))


@pytest.mark.parametrize("temporal_encoder", ["none", "local", "bigru"])
def test_padding_frames_get_exactly_zero_attention(temporal_encoder, rng):
    model = make_model(rng, temporal_encoder=temporal_encoder)
    frames = rng.integers(0, 256, (3, 7, 16, 16, 3)).astype("uint8")
    lengths = np.array([7, 3, 1], "int32")
    target_in = np.array([[2, 5, 6, 7], [2, 8, 0, 0], [2, 4, 5, 0]], "int32")
    _, weights = call_with_attention(model, frames, lengths, target_in)  # --> [B, T_out, T]
    for row, length in enumerate(lengths):
        assert np.all(weights[row, :, length:] == 0.0), row  # exactly zero, not just small
        steps = target_in[row] != 0
        np.testing.assert_allclose(weights[row, steps].sum(-1), 1.0, atol=1e-5)
    _, _, attention = decode(model, frames, lengths)
    for row, length in enumerate(lengths):
        assert np.all(attention[row, :, length:] == 0.0), row
    _, _, beam_attention = decode(model, frames, lengths, "beam", beam_width=2,
                                  num_hypotheses=2)  # --> [B, N, T_out, T]
    for row, length in enumerate(lengths):
        assert np.all(beam_attention[row, :, :, length:] == 0.0), row


@pytest.mark.parametrize("changes", [dict(temporal_encoder="none"),
                                     dict(temporal_encoder="local"),
                                     dict(temporal_encoder="bigru"),
                                     dict(temporal_encoder="local", model="mean_pool")],
                         ids=["frames", "local", "bigru", "mean_pool"])
def test_garbage_padding_gives_the_unpadded_answer(changes, rng):
    """A clip padded with garbage frames past its length is captioned, with the
    same attention, as the clip alone; so is a clip beside a longer one."""
    model = make_model(rng, **changes)
    clip = rng.integers(0, 256, (4, 16, 16, 3)).astype("uint8")
    garbage = rng.integers(0, 256, (5, 16, 16, 3)).astype("uint8")
    padded = np.concatenate([clip, garbage])[None]  # --> [1, 9, 16, 16, 3]
    target_in = np.array([[2, 5, 6, 7]], "int32")

    alone_logits, alone_weights = call_with_attention(model, clip[None], np.array([4]),
                                                      target_in)
    padded_logits, padded_weights = call_with_attention(model, padded, np.array([4]), target_in)
    np.testing.assert_allclose(padded_logits, alone_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(padded_weights[..., :alone_weights.shape[-1]], alone_weights,
                               rtol=1e-5, atol=1e-6)

    other = rng.integers(0, 256, (1, 9, 16, 16, 3)).astype("uint8")
    batch = np.concatenate([padded, other])
    for method, options in (("greedy", {}),
                            ("beam", dict(beam_width=2, num_hypotheses=2))):
        ids, lengths, attention = decode(model, clip[None], [4], method, **options)
        batch_ids, batch_lengths, batch_attention = decode(model, batch, [4, 9], method,
                                                           **options)
        np.testing.assert_array_equal(batch_ids[:1], ids)
        np.testing.assert_array_equal(batch_lengths[:1], lengths)
        np.testing.assert_allclose(batch_attention[:1, ..., :attention.shape[-1]], attention,
                                   rtol=1e-5, atol=1e-6)


def test_mean_pool_memory_is_the_numpy_masked_mean(rng):
    from training.video.model import VideoEncoder

    features = rng.normal(size=(3, 6, 5)).astype("float32")
    features[1, 4:] = np.nan  # padding may hold anything
    lengths = np.array([6, 4, 1])
    encoder = VideoEncoder(feature_dim=5, mean_pool=True)
    memory, mask = encoder({"features": features, "lengths": lengths})
    want = np.stack([features[b, :n].mean(axis=0) for b, n in enumerate(lengths)])[:, None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(memory), want, rtol=1e-6, atol=1e-6)
    assert keras.ops.convert_to_numpy(mask).tolist() == [[True]] * 3

    # Frames: the mean of the CNN's per-frame features over each clip's frames.
    model = make_model(rng, model="mean_pool", temporal_encoder="none")
    frames = rng.integers(0, 256, (2, 5, 16, 16, 3)).astype("uint8")
    lengths = np.array([5, 2])
    per_frame = keras.ops.convert_to_numpy(model.encoder.frame_features(frames))  # [B, T, C]
    memory, _ = model.encoder({"frames": frames, "lengths": lengths})
    want = np.stack([per_frame[b, :n].mean(axis=0) for b, n in enumerate(lengths)])[:, None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(memory), want, rtol=1e-5, atol=1e-6)
    # One position: the decoder's attention is trivially 1 at every step.
    _, weights = call_with_attention(model, frames, lengths, np.array([[2, 4], [2, 5]]))
    np.testing.assert_allclose(weights, 1.0)


def test_local_annotations_are_the_numpy_frame_change_and_time(rng):
    """relu(W [x_t; x_t - x_{t-1}; t / (L - 1)] + b) per frame, from the
    layer's own weights; zero past each clip's length."""
    from training.video.model import VideoEncoder

    features = rng.normal(size=(3, 6, 5)).astype("float32")
    features[1, 4:] = np.nan  # padding may hold anything
    lengths = np.array([6, 4, 1])
    encoder = VideoEncoder(feature_dim=5, temporal_encoder="local", temporal_units=3)
    memory, _ = encoder({"features": features, "lengths": lengths})
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in encoder.temporal.weights)
    assert kernel.shape == (11, 6)
    for b, length in enumerate(lengths):
        clip = features[b, :length].astype("float64")
        change = clip - np.concatenate([clip[:1], clip[:-1]])
        time = (np.arange(length) / max(length - 1, 1))[:, None]
        want = np.maximum(np.concatenate([clip, change, time], -1) @ kernel + bias, 0.0)
        got = keras.ops.convert_to_numpy(memory)[b]
        np.testing.assert_allclose(got[:length], want, rtol=1e-5, atol=1e-5)
        assert np.all(got[length:] == 0.0)


def test_attention_and_mean_pool_models_have_the_same_size(rng):
    attention = make_model(rng)
    mean_pool = make_model(rng, model="mean_pool")
    assert attention.count_params() == mean_pool.count_params() > 0


def test_features_source_skips_the_cnn(rng):
    from training.video.model import VideoEncoder

    encoder = VideoEncoder(feature_dim=7, temporal_encoder="bigru", temporal_units=4)
    memory, mask = encoder({"features": rng.normal(size=(2, 3, 7)).astype("float32"),
                            "lengths": np.array([3, 2])})
    assert tuple(memory.shape) == (2, 3, 8) and encoder.source_kind == "features"
    assert keras.ops.convert_to_numpy(mask).tolist() == [[True, True, True],
                                                         [True, True, False]]
    with pytest.raises(ValueError, match="precomputed features"):
        encoder.frame_features(np.zeros((1, 2, 16, 16, 3), "uint8"))


def test_position_channels_say_where_a_pixel_is():
    from training.video.model import add_position_channels

    images = np.zeros((1, 3, 4, 3), "float32")
    out = keras.ops.convert_to_numpy(add_position_channels(images))
    assert out.shape == (1, 3, 4, 5)
    np.testing.assert_allclose(out[0, 0, :, 3], [0, 85, 170, 255])  # x, left to right
    np.testing.assert_allclose(out[0, :, 0, 4], [0, 127.5, 255])   # y, top to bottom


def test_encoder_and_model_config_round_trip(rng, tmp_path):
    model = make_model(rng, temporal_encoder="bigru", model="mean_pool")
    frames = rng.integers(0, 256, (1, 3, 16, 16, 3)).astype("uint8")
    inputs = {"source": {"frames": frames, "lengths": np.array([2])},
              "target_in": np.array([[2, 5]], "int32")}
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    def described(encoder):  # the config without the shapes it was built for
        config = dict(encoder.get_config())
        config["frame_encoder"] = config["frame_encoder"]["config"]
        return config

    assert described(loaded.encoder) == described(model.encoder)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)),
                               keras.ops.convert_to_numpy(model(inputs)), rtol=1e-5, atol=1e-6)


def test_config_rules():
    from training.core import config as config_lib
    from training.video.config import PRESETS, VideoConfig

    for overrides, message in ((["source=features"], "data=folder"),
                               (["min_clip_frames=20", "max_clip_frames=12"], "min_clip_frames"),
                               (["max_frames=16", "max_clip_frames=20"], "max_frames"),
                               (["model=lstm"], "model: must be one of attention, mean_pool"),
                               (["data=folder"], "clips_dir")):
        with pytest.raises(config_lib.ConfigError, match=message):
            config_lib.load(VideoConfig, PRESETS, "main", None, overrides)


# ----------------------------------------------------------------- metrics
def test_word_events_of_a_clips_own_caption_are_its_word_events():
    checked = 0
    for clip in clips.generate_clips(300, seed=5, frame_count=(8, 24)):
        assert metrics.word_events(clip.words, clip.events) == list(clip.word_events), \
            clip.caption
        checked += len(clip.events) > 1
    assert checked > 100


def test_word_events_of_a_wrong_caption():
    red_move = Event("move", "circle", "red", 2, 5, (1, 2, 3, 4), direction="left")
    blue_turn = Event("change_colour", "square", "blue", 6, 9, (8, 9, 10, 11),
                      new_colour="green", object_index=1)
    events = [red_move, blue_turn]
    # The right events in the wrong order, one with the wrong direction.
    words = "a blue square turns green , then a red circle moves right".split()
    assert metrics.word_events(words, events) == [-1, 1, 1, 1, 1, -1, -1, -1, 0, 0, 0, 0]
    # An event that did not happen names nothing.
    assert metrics.word_events("a white circle appears".split(), events) == [-1] * 4


def test_temporal_localization_by_hand():
    event = Event("appear", "square", "green", 3, 5, (1, 2, 3))
    attention = np.array([[0.25] * 4 + [0.0] * 4,                  # "a": names no event
                          [0.0, 0.0, 0.1, 0.5, 0.3, 0.1, 0.0, 0.0],  # "green": in the span
                          [0.0, 0.0, 0.0, 0.0, 0.0, 0.6, 0.4, 0.0],  # "square": after it
                          [0.125] * 8])                             # "appears": uniform
    records = metrics.temporal_localization(attention, [-1, 0, 0, 0], [event], 8)
    assert [r.position for r in records] == [1, 2, 3]
    assert [round(r.mass, 6) for r in records] == [0.8, 0.0, 0.25]
    assert [r.hit for r in records] == [1.0, 0.0, 0.25]  # a tie counts the share inside
    assert all(r.chance == 0.25 for r in records)
    # One frame either side: frames 2..5; "square"'s peak, frame 5, is next to the span.
    assert [r.near_hit for r in records] == [1.0, 1.0, 0.5]
    assert all(r.near_chance == 0.5 for r in records)
    summary = metrics.summarize_localization(records)
    assert summary["words"] == 3 and summary["chance"] == 0.25
    assert summary["hit_rate"] == pytest.approx(1.25 / 3)
    assert summary["near_hit_rate"] == pytest.approx(2.5 / 3)
    with_roles = metrics.temporal_localization(attention, [-1, 0, 0, 0], [event], 8,
                                               words="a green square appears".split())
    summary = metrics.summarize_localization(with_roles)
    assert summary["hit_rate_by_role"] == {"colour": 1.0, "shape": 0.0, "verb": 0.25}


def test_word_roles_of_generated_captions():
    for clip in clips.generate_clips(100, seed=2):
        roles = metrics.word_roles(clip.words)
        for event in clip.events:
            expected = ["colour", "shape", "verb"] + ["argument"] * (
                event.kind in ("move", "change_colour"))
            assert [roles[p] for p in event.word_positions] == expected, clip.caption
        assert all(role == "" for role, owner in zip(roles, clip.word_events) if owner < 0)


def test_uniform_attention_scores_chance(rng):
    for clip in clips.generate_clips(20, seed=1, frame_count=(8, 20)):
        frames = len(clip.frames)
        uniform = np.full((len(clip.words), frames), 1.0 / frames)
        records = metrics.temporal_localization(uniform, clip.word_events, clip.events, frames)
        for record in records:
            assert record.mass == pytest.approx(record.chance)
            assert record.hit == pytest.approx(record.chance)


def test_temporal_localization_rejects_bad_input():
    event = Event("appear", "square", "green", 1, 3, (1, 2, 3))
    with pytest.raises(ValueError, match="attention must be"):
        metrics.temporal_localization(np.ones((2, 4)), [0, 0], [event], 5)
    with pytest.raises(ValueError, match="word events"):
        metrics.temporal_localization(np.ones((2, 4)), [0], [event], 4)
    with pytest.raises(ValueError, match="non-negative"):
        metrics.temporal_localization(-np.ones((1, 4)), [0], [event], 4)


def test_attention_text_view_shows_the_peak_frame():
    lines = evaluation.attention_text_view(
        ["red", "appears"], np.array([[0.0, 0.9, 0.1], [0.35, 0.25, 0.4]])).split("\n")
    assert lines[0].startswith("red") and "frame  1  0.90  _#." in lines[0]
    assert "frame  2  0.40  #:#" in lines[1]


@pytest.mark.parametrize("module", [metrics, evaluation], ids=["metrics", "evaluation"])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_model_docstring_examples():
    from training.video import model

    result = doctest.testmod(model, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------- export
def small_vocabulary():
    from training.core.text import SPECIAL_TOKENS, Vocabulary

    return Vocabulary(list(SPECIAL_TOKENS) + ["a", "red", "circle", "appears"], max_tokens=6)


def test_mean_pooled_export_returns_uniform_attention_over_each_clip(rng):
    from training.core.decoding_options import DecodingOptions
    from training.video.export import VideoCaptioner

    model = make_model(rng, vocab_size=8, model="mean_pool")
    captioner = VideoCaptioner(model, small_vocabulary(), 4, frame_size=16, max_frames=10,
                               decoding=DecodingOptions(beam_width=2, num_hypotheses=2))
    frames = rng.integers(0, 256, (2, 5, 16, 16, 3)).astype("uint8")
    out = captioner.greedy(frames, np.array([5, 2], "int32"))
    attention, lengths = out["attention"].numpy(), out["length"].numpy()  # --> [B, T_out, T']
    assert attention.shape[2] == 5 and out["frame_count"].numpy().tolist() == [5, 2]
    for row, frame_count in enumerate([5, 2]):
        words = lengths[row]
        np.testing.assert_allclose(attention[row, :words, :frame_count], 1 / frame_count,
                                   rtol=1e-6)
        assert np.all(attention[row, :, frame_count:] == 0)
        assert np.all(attention[row, words:] == 0)
    extras = captioner.metadata_extras()
    assert extras["model"] == "mean_pool" and extras["source"] == "frames"


def test_a_features_model_exports_features_signatures_only(rng):
    from training.core.decoding_options import DecodingOptions
    from training.video.export import VideoCaptioner
    from training.video.model import build_model

    config = dataclasses.replace(small_config(), source="features", data="folder")
    model = build_model(config, 8, feature_dim=6)
    features = rng.normal(size=(2, 4, 6)).astype("float32")
    model({"source": {"features": features, "lengths": np.array([4, 3])},
           "target_in": np.ones((2, 3), "int32")})
    captioner = VideoCaptioner(model, small_vocabulary(), 4, frame_size=16, max_frames=10,
                               decoding=DecodingOptions(beam_width=2, num_hypotheses=2))
    assert sorted(captioner.signature_functions) == ["beam_search", "serving_default"]
    out = captioner.greedy(features, np.array([4, 3], "int32"))
    assert out["attention"].shape[-1] == 4
    described = captioner.metadata(captioner.signatures())["signatures"]["serving_default"]
    assert described["inputs"] == {
        "features": {"dtype": "float32", "shape": [-1, -1, 6], "kind": "frame_features"},
        "lengths": {"dtype": "int32", "shape": [-1], "kind": "frame_count"}}


def test_the_command_line_refuses_a_bad_config_before_tensorflow(capsys):
    from training.core import cli
    from training.video.__main__ import TASK

    with pytest.raises(SystemExit) as exit_info:
        cli.main(TASK, ["--set", "temporal_encoder=lstm"])
    assert exit_info.value.code == 2
    assert "temporal_encoder: must be one of none, local, bigru" in capsys.readouterr().err


def _report(localization):
    return {"test_clips": 4, "model": "attention", "localization": localization,
            "training": {"steps": 2, "seconds": 1.0, "stopped_by": "epochs"},
            "plots": [], "export": "w/export/1", "workdir": "w", "total_seconds": 2.0}


def test_the_report_says_when_no_decoded_word_names_an_event(capsys):
    """An untrained model names no event: the report says so instead of
    printing nan for means over zero words."""
    from training.video.__main__ import print_report

    nan = float("nan")
    print_report(_report({"words": 0, "mass": nan, "hit_rate": nan, "chance": nan,
                          "near_hit_rate": nan, "near_chance": nan}))
    out = capsys.readouterr().out
    assert "temporal localization: no decoded word names an event (0 event words)" in out
    assert "nan" not in out
    print_report(_report({"words": 3, "mass": 0.5, "hit_rate": 2 / 3, "chance": 0.25,
                          "near_hit_rate": 1.0, "near_chance": 0.5}))
    assert ("temporal localization (3 event words): attention mass in the event's frames "
            "0.500, most-attended frame inside them 0.667 (chance 0.250), within a frame of "
            "them 1.000 (chance 0.500)") in capsys.readouterr().out
