"""Assembles the translation model from a config: a text encoder and the
shared decoder (`training.core.seq2seq`)."""

from training.core.encoders import ConvTextEncoder, RecurrentTextEncoder, TransformerTextEncoder
from training.core.seq2seq import AttentionSeq2Seq, build_decoder_cell


def build_encoder(config, source_vocab_size):
    """Every encoder maps ids `[B, S]` to `[B, S, units]` and a mask."""
    if config.encoder == "rnn":
        return RecurrentTextEncoder(
            source_vocab_size, config.embedding_dim, config.units // 2, rnn_type=config.rnn_type,
            num_layers=config.encoder_layers, dropout=config.dropout, name="encoder",
        )
    if config.encoder == "conv":
        return ConvTextEncoder(
            source_vocab_size, config.embedding_dim, config.units,
            num_layers=max(2, 2 * config.encoder_layers), max_length=config.max_source_tokens,
            dropout=config.dropout, name="encoder",
        )
    return TransformerTextEncoder(
        source_vocab_size, config.units, num_layers=max(2, config.encoder_layers),
        max_length=config.max_source_tokens, dropout=config.dropout, name="encoder",
    )


def build_model(config, source_vocab_size, target_vocab_size):
    """An `AttentionSeq2Seq` for ids `[B, S]` -> logits `[B, T, V]`.

    A corpus with fewer target words than `sampled_softmax` candidates
    trains with the exact softmax, which then costs no more."""
    sampled_softmax = config.sampled_softmax if config.sampled_softmax < target_vocab_size else 0
    return AttentionSeq2Seq(
        build_encoder(config, source_vocab_size), target_vocab_size, config.embedding_dim,
        build_decoder_cell(config), fast_path="auto", dropout=config.dropout,
        attention_regularization=config.attention_regularization,
        sampled_softmax=sampled_softmax, label_smoothing=config.label_smoothing,
        name="translator",
    )
