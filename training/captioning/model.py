"""Assembles the captioning model from a config: an image encoder (a grid
of regions) and the shared attention decoder (`training.core.seq2seq`)."""

from training.core.image_encoders import BackboneImageEncoder, ConvImageEncoder
from training.core.seq2seq import AttentionSeq2Seq, build_decoder_cell


def build_encoder(config):
    """Images `[B, size, size, 3]` -> regions `[B, h*w, C]` and an all-True mask."""
    if config.encoder == "cnn":
        return ConvImageEncoder(config.cnn_filters, config.cnn_blocks, name="encoder")
    weights = None if config.backbone_weights == "none" else config.backbone_weights
    return BackboneImageEncoder(config.encoder, weights=weights,
                                trainable=not config.freeze_encoder,
                                input_size=config.backbone_input_size, name="encoder")


def build_model(config, vocab_size):
    """An `AttentionSeq2Seq` for images -> caption logits `[B, T, V]`."""
    return AttentionSeq2Seq(
        build_encoder(config), vocab_size, config.embedding_dim, build_decoder_cell(config),
        fast_path="auto", dropout=config.dropout,
        attention_regularization=config.attention_regularization,
        attention_supervision=config.attention_supervision, name="captioner",
    )
