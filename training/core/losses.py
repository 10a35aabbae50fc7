"""The loss and metric every task's training compiles: token cross-entropy
and accuracy over the real (non-padding) tokens."""

import keras
from keras import ops

from training.core.devices import replicas_in_sync


@keras.saving.register_keras_serializable(package="keras_attention_training")
class MaskedSequenceLoss(keras.losses.Loss):
    """Token cross-entropy that ignores padding (label 0), optionally with
    label smoothing (Szegedy et al. 2016), averaged over real tokens.

    y_true: int `[B, T]`; y_pred: logits `[B, T, V]`.
    """

    def __init__(self, label_smoothing=0.0, name="masked_sequence_loss", **kwargs):
        kwargs.pop("reduction", None)  # in get_config(); always "sum" (see `call`)
        super().__init__(name=name, reduction="sum", **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)  # --> [B, T, V]
        # Smoothed targets are (1 - e) one_hot(y) + e / V: the loss splits into
        # the negative log-likelihood and the mean negative log-probability,
        # without materializing a [B, T, V] one-hot tensor.
        token_losses = -ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
        if self.label_smoothing:
            uniform = -ops.mean(log_probs, axis=-1)  # --> [B, T]
            token_losses = ((1.0 - self.label_smoothing) * token_losses
                            + self.label_smoothing * uniform)
        mask = ops.cast(y_true != 0, "float32")
        loss = ops.sum(token_losses * mask) / ops.maximum(ops.sum(mask), 1.0)
        # Keras scales only its "mean" reductions by 1 / replicas; this loss is
        # already a mean per replica, and the replicas' gradients are summed.
        return loss / replicas_in_sync()

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="keras_attention_training")
def masked_token_accuracy(y_true, y_pred):
    """Share of non-padding tokens predicted right (arg-max)."""
    y_true = ops.cast(y_true, "int32")
    mask = ops.cast(y_true != 0, "float32")
    hits = ops.cast(ops.argmax(y_pred, axis=-1) == y_true, "float32") * mask
    return ops.sum(hits) / ops.maximum(ops.sum(mask), 1.0)


def log_uniform_candidates(num_sampled, vocab_size, seed):
    """`num_sampled` word ids drawn with replacement from the log-uniform
    (Zipf) distribution `Q(k) = log((k + 2) / (k + 1)) / log(V + 1)`, which
    suits vocabularies sorted by frequency (ours: most frequent first).

    Returns `(ids int32 [K], log_expected float32 [K])`, the second the log of
    each id's expected count in the draw, `log(K Q(id))`.
    """
    log_range = ops.log(float(vocab_size) + 1.0)
    draws = keras.random.uniform([num_sampled], seed=seed)
    ids = ops.cast(ops.floor(ops.exp(draws * log_range)), "int32") - 1
    ids = ops.clip(ids, 0, vocab_size - 1)
    return ids, log_expected_count(ids, num_sampled, vocab_size)


def log_expected_count(ids, num_sampled, vocab_size):
    """`log(K Q(id))` of `log_uniform_candidates`, for any int ids."""
    ids = ops.cast(ids, "float32")
    probability = (ops.log(ids + 2.0) - ops.log(ids + 1.0)) / ops.log(float(vocab_size) + 1.0)
    return ops.log(float(num_sampled) * probability)


def sampled_softmax_loss(features, targets, kernel, bias, candidates, label_smoothing=0.0):
    """Sampled softmax (Jean et al. 2015): each token's cross-entropy over its
    true word and K candidate words shared by the batch, instead of all V
    words, with every logit corrected by the log of its word's expected count
    (`log_uniform_candidates`) so the gradient stays an estimate of the full
    softmax's. A candidate equal to the token's true word is left out.

    Args:
        features: float `[B, T, D]`, the output layer's inputs.
        targets: int `[B, T]`, 0 for padding.
        kernel, bias: The output layer's `[D, V]` and `[V]`.
        candidates: `(ids int32 [K], log_expected float32 [K])`.
        label_smoothing: e, spread over the true word and the candidates.

    Returns:
        The mean over real tokens, a float32 scalar (as `MaskedSequenceLoss`).
    """
    ids, log_expected = candidates
    vocab_size = ops.shape(kernel)[-1]
    num_sampled = ops.shape(ids)[0]
    depth = ops.shape(features)[-1]
    features = ops.reshape(ops.cast(features, "float32"), [-1, depth])  # --> [N, D]
    targets = ops.reshape(ops.cast(targets, "int32"), [-1])  # --> [N]
    kernel, bias = ops.cast(kernel, "float32"), ops.cast(bias, "float32")
    true_logits = (ops.sum(features * ops.transpose(ops.take(kernel, targets, axis=1)), -1)
                   + ops.take(bias, targets)
                   - log_expected_count(targets, num_sampled, vocab_size))  # --> [N]
    sampled_logits = (ops.matmul(features, ops.take(kernel, ids, axis=1))
                      + ops.take(bias, ids) - log_expected)  # --> [N, K]
    hits = targets[:, None] == ids[None, :]  # --> [N, K]
    sampled_logits = ops.where(hits, -1e9, sampled_logits)
    log_probs = ops.log_softmax(ops.concatenate([true_logits[:, None], sampled_logits], -1))
    token_losses = -log_probs[:, 0]
    if label_smoothing:
        kept = ops.concatenate([ops.ones_like(true_logits[:, None]),
                                1.0 - ops.cast(hits, "float32")], -1)  # --> [N, 1 + K]
        uniform = -ops.sum(log_probs * kept, -1) / ops.sum(kept, -1)
        token_losses = (1.0 - label_smoothing) * token_losses + label_smoothing * uniform
    mask = ops.cast(targets != 0, "float32")
    loss = ops.sum(token_losses * mask) / ops.maximum(ops.sum(mask), 1.0)
    return loss / replicas_in_sync()
