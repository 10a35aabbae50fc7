"""The step-level signatures of every task's export (`encode`, `decode_step`):
a client that runs greedy or beam search over them alone, on the loaded
SavedModel, gets the whole-sequence signatures' answers: token ids,
lengths, scores and attention, row by row (each row at its own length
limit, empty rows included), with and without the repetition guard."""

import numpy as np
import pytest
from serving_exports import gif_bytes, png_bytes

from keras_attention.export_format import read_metadata

pytestmark = pytest.mark.slow

SENTENCES = ["the red dog", "", "a cat sees the green dog runs . the cat", "dog"]


def step_search(loaded, metadata, method, encode_key, inputs):
    """Greedy or beam search (`keras_attention.decoding`, eager) whose step
    function calls the export's `decode_step` on `encode_key`'s output.
    Returns `(DecodingResult, empty [B])`."""
    import tensorflow as tf

    from keras_attention import decoding

    described = metadata["step_signatures"]["decode_step"]
    encoded = loaded.signatures[encode_key](**inputs)
    state = tuple(encoded[name] for name in described["state"])
    constants = tuple(encoded[name] for name in described["constants"])
    decode_step = loaded.signatures["decode_step"]

    def step_fn(tokens, state, constants):
        out = decode_step(tokens=tf.cast(tokens, tf.int32),
                          **dict(zip(described["state"], state)),
                          **dict(zip(described["constants"], constants)))
        return out["log_probs"], tuple(out[name] for name in described["state"]), \
            out["attention"]

    batch = int(encoded["row_limits"].shape[0])
    start = np.full([batch], described["start_token"], "int32")
    max_length = max(int(tf.reduce_max(encoded["row_limits"])), 1)
    if method == "greedy":
        result = decoding.greedy_search(step_fn, state, start, described["end_token"],
                                        max_length, constants=constants)
    else:
        beam = metadata["signatures"]["beam_search"]
        result = decoding.beam_search(
            step_fn, state, start, described["end_token"], max_length,
            beam_width=beam["beam_width"], length_penalty=beam["length_penalty"],
            num_hypotheses=beam["num_hypotheses"], constants=constants)
    return result, encoded["empty"].numpy()


def assert_same_answers(result, empty, whole, beam):
    """The search's `result` cut and masked as the export's answer is."""
    ids, lengths = np.asarray(result.ids), np.asarray(result.lengths)
    scores = np.asarray(result.scores if beam else result.log_probs)
    attention = np.asarray(result.attention)
    if not beam:  # one hypothesis: [B, ...] -> [B, 1, ...]
        ids, lengths, scores, attention = (x[:, None] for x in (ids, lengths, scores, attention))
    rows_empty = empty[:, None]
    lengths = np.where(rows_empty, 0, lengths)
    longest = max(int(lengths.max()), 0)
    valid = np.arange(longest)[None, None, :] < lengths[..., None]  # --> [B, N, T]
    want_ids = np.asarray(whole["token_ids"]).reshape(ids.shape[0], -1, longest)
    want_lengths = np.asarray(whole["length"]).reshape(lengths.shape)
    want_scores = np.asarray(whole["score"]).reshape(scores.shape)
    want_attention = np.asarray(whole["attention"]).reshape(
        *want_ids.shape, attention.shape[-1])
    np.testing.assert_array_equal(want_lengths, lengths)
    np.testing.assert_array_equal(want_ids, np.where(valid, ids[..., :longest], 0))
    np.testing.assert_allclose(want_scores, np.where(rows_empty, 0.0, scores),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        want_attention, attention[..., :longest, :] * valid[..., None], atol=1e-6)


def check_export(version_dir, encode_key, greedy_key, beam_key, inputs):
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    metadata = read_metadata(version_dir)
    for method, key in (("greedy", greedy_key), ("beam", beam_key)):
        whole = {name: value.numpy() for name, value in loaded.signatures[key](**inputs).items()}
        result, empty = step_search(loaded, metadata, method, encode_key, inputs)
        assert_same_answers(result, empty, whole, beam=method == "beam")
    return metadata


def test_translation_steps_give_the_whole_answers(translator_dir):
    import tensorflow as tf

    metadata = check_export(f"{translator_dir}/1", "encode", "serving_default", "beam_search",
                            {"source_text": tf.constant(SENTENCES)})
    described = metadata["step_signatures"]
    assert set(described) == {"encode", "decode_step", "finish"}
    assert set(described["encode"]["inputs"]) == {"source_text"}
    step = described["decode_step"]
    assert set(step["inputs"]) == {"tokens", *step["state"], *step["constants"]}
    assert set(step["outputs"]) == {"log_probs", "attention", *step["state"]}
    # Every state tensor and constant has the batch first, for a search to
    # reorder and a server to join rows.
    for name in [*step["state"], *step["constants"]]:
        assert step["inputs"][name]["shape"][0] == -1, name


def test_translation_steps_apply_the_repetition_guard(tmp_path):
    """The guard's history is in the state: an untrained translator that
    repeats itself is held to no repeated bigram, step by step as whole."""
    import dataclasses

    import tensorflow as tf
    from serving_exports import build_translator

    exporter = build_translator()
    exporter.decoding = dataclasses.replace(exporter.decoding, no_repeat_ngram_size=2)
    path = exporter.save(str(tmp_path), "guarded", 1)
    check_export(path, "encode", "serving_default", "beam_search",
                 {"source_text": tf.constant(SENTENCES)})


def test_captioning_steps_give_the_whole_answers(captioner_dir):
    import tensorflow as tf

    images = tf.constant([png_bytes(seed) for seed in range(3)])
    check_export(f"{captioner_dir}/1", "encode", "serving_default", "beam_search",
                 {"image_bytes": images})


@pytest.mark.parametrize("variant", ["frames", "gif", "features"])
def test_video_steps_give_the_whole_answers(video_captioner_dir, variant):
    import tensorflow as tf

    rng = np.random.default_rng(3)
    lengths = np.array([3, 5, 1], "int32")
    if variant == "frames":
        inputs = {"frames": tf.constant(rng.integers(0, 256, (3, 5, 16, 16, 3), np.uint8)),
                  "lengths": tf.constant(lengths)}
        keys = ("encode", "serving_default", "beam_search")
    elif variant == "gif":
        inputs = {"video_bytes": tf.constant([gif_bytes(seed, frames=int(n))
                                              for seed, n in enumerate(lengths)])}
        keys = ("gif_encode", "gif_greedy", "gif_beam")
    else:
        dim = read_metadata(f"{video_captioner_dir}/1")["feature_dim"]
        features = rng.normal(size=(3, 5, dim)).astype("float32")
        inputs = {"features": tf.constant(features), "lengths": tf.constant(lengths)}
        keys = ("features_encode", "features_greedy", "features_beam")
    metadata = check_export(f"{video_captioner_dir}/1", *keys, inputs)
    assert set(metadata["step_signatures"]) == {"encode", "gif_encode", "features_encode",
                                                "decode_step", "finish"}
