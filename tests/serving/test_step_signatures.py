"""The step-level signatures of every task's export (`encode`, `decode_step`):
a client that runs greedy or beam search over them alone, on the loaded
SavedModel, gets the whole-sequence signatures' answers: token ids,
lengths, scores and attention, row by row (each row at its own length
limit, empty rows included), with and without the repetition guard."""

import numpy as np
import pytest
from serving_exports import gif_bytes, png_bytes
from step_check import check_export

from keras_attention.export_format import read_metadata

pytestmark = pytest.mark.slow

SENTENCES = ["the red dog", "", "a cat sees the green dog runs . the cat", "dog"]


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
