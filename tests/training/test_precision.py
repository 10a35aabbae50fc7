"""`precision=mixed_bfloat16|mixed_float16`: each trains a CI-sized
translation model without NaN, keeps logits, loss and the exported attention
and scores in float32, and exports a SavedModel that runs.

One short training per 16-bit precision (module fixture, shared by its
tests); float32, the default, is what every other training test runs.
"""

import dataclasses

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.slow

SENTENCES = ["In the beginning God created the heavens and the earth.", "", "Jesus wept."]


def tiny_config(**changes):
    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig

    config = config_lib.load(TranslationConfig, PRESETS, "tiny")
    return dataclasses.replace(
        config, steps_per_epoch=4, epochs=1, max_train_pairs=400, max_eval_pairs=8,
        checkpoint_steps=4, beam_width=2, num_hypotheses=1, **changes)


@pytest.fixture(scope="module", params=["mixed_bfloat16", "mixed_float16"])
def trained(request, tmp_path_factory):
    from training.core import losses
    from training.translation import train as train_lib

    precision = request.param
    config = tiny_config(precision=precision)
    workdir = str(tmp_path_factory.mktemp(f"precision_{precision}"))
    logged = []
    try:
        result, source_vocabulary, target_vocabulary = train_lib.train(
            config, workdir, log=lambda *a: logged.append(" ".join(map(str, a))))
        model = result.model
        corpus = train_lib.load_corpus(config)
        translator = train_lib.make_translator(config, model, corpus, source_vocabulary,
                                               target_vocabulary)
        export_path = translator.save(str(tmp_path_factory.mktemp("export")), "t", 1)
        # What the model computes on one real batch, under its policy.
        inputs = {"source": np.array([[5, 6, 7, 0]], "int32"),
                  "target_in": np.array([[1, 8, 9]], "int32")}
        logits, weights = model(inputs, return_attention_scores=True)
        loss = losses.MaskedSequenceLoss(config.label_smoothing)(
            np.array([[8, 9, 3]], "int32"), logits)
        yield dict(precision=precision, config=config, result=result, model=model,
                   export_path=export_path, logits=logits, weights=weights, loss=loss,
                   policy=keras.config.dtype_policy().name, logged=logged)
    finally:
        keras.config.set_dtype_policy("float32")


def test_trains_without_nan_under_the_policy(trained):
    result, model, precision = trained["result"], trained["model"], trained["precision"]
    assert trained["policy"] == precision  # applied by fit, before the model was built
    assert result.steps == 4 and result.stopped_by == "steps"
    assert np.all(np.isfinite(result.history["loss"])), result.history
    assert np.all(np.isfinite(result.history["val_loss"])), result.history
    compute = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[precision]
    assert model.decoder_cell.attention.compute_dtype == compute
    assert model.output_projection.compute_dtype == compute
    # Variables stay float32 under mixed policies.
    assert {w.dtype for w in model.trainable_weights} == {"float32"}


def test_logits_loss_and_softmax_are_float32(trained):
    logits, weights, loss = trained["logits"], trained["weights"], trained["loss"]
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert np.isfinite(float(loss))
    # The weights are a float32 softmax; under a mixed policy the tensor the
    # layer returns is rounded to the compute dtype only at the end: each row
    # still sums to 1 within that dtype's rounding.
    sums = keras.ops.convert_to_numpy(keras.ops.cast(weights, "float32")).sum(-1)
    tolerance = {"mixed_bfloat16": 3e-2, "mixed_float16": 4e-3}
    np.testing.assert_allclose(sums, 1.0, atol=tolerance[trained["precision"]])


def test_mixed_float16_scales_the_loss(trained):
    optimizer = trained["model"].optimizer
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (trained["precision"] == "mixed_float16")
    if scaled:
        assert np.isfinite(float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)))


def test_export_runs_and_keeps_float32_outputs(trained):
    import tensorflow as tf

    from training.core.export import read_metadata

    loaded = tf.saved_model.load(trained["export_path"])
    metadata = read_metadata(trained["export_path"])
    for key in ("serving_default", "beam_search"):
        function = loaded.signatures[key]
        out = function(source_text=tf.constant(SENTENCES))
        assert out["attention"].dtype == tf.float32, key
        assert out["score"].dtype == tf.float32, key
        assert metadata["signatures"][key]["outputs"]["attention"]["dtype"] == "float32"
        assert metadata["signatures"][key]["outputs"]["score"]["dtype"] == "float32"
        assert np.all(np.isfinite(out["attention"].numpy()))
        assert np.all(np.isfinite(out["score"].numpy()))
        text = out["text"].numpy()
        assert text.shape[0] == len(SENTENCES)
        # The defined answer to an empty input: "" with no tokens.
        assert out["length"].numpy().reshape(len(SENTENCES), -1)[1].max() == 0


def test_sixteen_bits_on_cpus_alone_come_with_a_note(trained):
    """On CPUs alone the 16-bit precisions are told they are slower."""
    from training.core import devices

    assert devices.precision_warning("mixed_bfloat16", accelerator=True) is None
    assert devices.precision_warning("float32", accelerator=False) is None
    if devices.has_accelerator():
        pytest.skip("this machine has a GPU: no note is due")
    notes = [line for line in trained["logged"] if line.startswith("note: precision=")]
    assert len(notes) == 1 and f"precision={trained['precision']} on CPUs" in notes[0]
    assert "README" in notes[0]
