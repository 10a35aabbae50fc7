"""One Adam step of the translation model, on this backend, against numpy.

    KERAS_BACKEND=tensorflow python -m benchmarks.bench_adam_update
    KERAS_BACKEND=jax        python -m benchmarks.bench_adam_update

Builds the main preset's model (6,000-word vocabularies), takes one
training step (`train_on_batch`: Keras' own step, Adam with the preset's
schedule and `clipnorm`) on a batch of Zipf-distributed token ids (as in
text, a few ids recur many times), and compares each variable's update with
Adam's, computed in numpy from the dense gradient of the same loss, weights
and batch. Prints, per variable, the largest difference and the largest
ratio of the update to numpy's; on TensorFlow the embedding tables' rows of
repeated ids move further (their gradients are `tf.IndexedSlices` and
Keras' Adam squares the slices before it sums them).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import markdown_table  # noqa: E402
from training.core import config as config_lib  # noqa: E402
from training.core import fitting, losses  # noqa: E402
from training.translation.config import PRESETS, TranslationConfig  # noqa: E402
from training.translation.model import build_model  # noqa: E402

VOCAB = 6000


def zipf_ids(rng, shape):
    return np.minimum(rng.zipf(1.3, shape) + 3, VOCAB - 1).astype("int32")  # 0-3: special


def dense_gradients(model, loss_fn, inputs, labels):
    """d loss / d trainable variables, dense numpy arrays."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(inputs, training=True))
        return [tf.convert_to_tensor(g).numpy()
                for g in tape.gradient(loss, model.trainable_variables)]
    import jax

    trainable = [v.value for v in model.trainable_variables]
    others = [v.value for v in model.non_trainable_variables]

    def loss_of(trainable):
        logits, _ = model.stateless_call(trainable, others, inputs, training=True)
        return loss_fn(labels, logits)

    return [np.asarray(g) for g in jax.grad(loss_of)(trainable)]


def numpy_adam_step(weights, gradient, learning_rate, optimizer):
    """Keras' Adam, first step, with its per-variable `clipnorm`."""
    norm = np.linalg.norm(gradient)
    if optimizer.clipnorm and norm > optimizer.clipnorm:
        gradient = gradient * optimizer.clipnorm / norm
    b1, b2 = optimizer.beta_1, optimizer.beta_2
    m, v = (1 - b1) * gradient, (1 - b2) * gradient ** 2
    step_size = learning_rate * np.sqrt(1 - b2) / (1 - b1)
    return weights - step_size * m / (np.sqrt(v) + optimizer.epsilon)


def main():
    config = config_lib.load(TranslationConfig, PRESETS, "main", None, [])
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    batch, length = config.batch_size, 30
    inputs = {"source": zipf_ids(rng, (batch, length)),
              "target_in": zipf_ids(rng, (batch, length))}
    labels = zipf_ids(rng, (batch, length))
    model = build_model(config, VOCAB, VOCAB)
    loss_fn = losses.MaskedSequenceLoss(config.label_smoothing)
    model.compile(fitting.default_optimizer(config, config.epochs * config.steps_per_epoch),
                  loss_fn)
    model(inputs)
    model.optimizer.build(model.trainable_variables)
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    gradients = dense_gradients(model, loss_fn, inputs, labels)
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    model.train_on_batch(inputs, labels)
    rows = []
    for variable, weights, gradient in zip(model.trainable_variables, before, gradients):
        update = keras.ops.convert_to_numpy(variable) - weights
        expected = numpy_adam_step(weights, gradient, learning_rate, model.optimizer) - weights
        moved = np.abs(expected) > 1e-3 * learning_rate  # entries Adam moves at all
        ratio = np.abs(update[moved]) / np.abs(expected[moved]) if moved.any() else np.ones(1)
        row_info = ""
        if "embedding" in variable.path:
            touched = np.abs(gradient).sum(axis=1) > 0
            off = np.abs(update - expected).max(axis=1) > 0.01 * learning_rate
            row_info = f"{int((off & touched).sum())} of {int(touched.sum())}"
        rows.append([variable.path, f"{np.abs(update - expected).max():.1e}",
                     f"{ratio.max():.2f}", row_info])
    print(f"backend {keras.backend.backend()}, keras {keras.__version__}; batch {batch} x "
          f"{length} Zipf ids; first step, learning rate {learning_rate:.2e}")
    print(markdown_table(["variable", "max |update - numpy Adam|", "max update / numpy's",
                          "embedding rows off (of those in the batch)"], rows))


if __name__ == "__main__":
    main()
