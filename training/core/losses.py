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
