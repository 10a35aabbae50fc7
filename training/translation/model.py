"""Assembles the translation model from a config."""

from training.core.encoders import ConvTextEncoder, RecurrentTextEncoder, TransformerTextEncoder
from training.core.seq2seq import AttentionSeq2Seq, make_decoder_cell

ENCODERS = ("rnn", "conv", "transformer")
DECODERS = {
    # name: (timing, input_feeding)
    "fast": ("luong", False),
    "bahdanau": ("bahdanau", True),
    "luong_feeding": ("luong", True),
}


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
    if config.encoder == "transformer":
        return TransformerTextEncoder(
            source_vocab_size, config.units, num_layers=max(2, config.encoder_layers),
            max_length=config.max_source_tokens, dropout=config.dropout, name="encoder",
        )
    raise ValueError(f"config.encoder must be one of {ENCODERS}, received {config.encoder!r}")


def build_model(config, source_vocab_size, target_vocab_size):
    """An `AttentionSeq2Seq` for ids `[B, S]` -> logits `[B, T, V]`."""
    if config.decoder not in DECODERS:
        raise ValueError(
            f"config.decoder must be one of {sorted(DECODERS)}, received {config.decoder!r}"
        )
    timing, input_feeding = DECODERS[config.decoder]
    cell = make_decoder_cell(
        config.units, config.attention, config.attention_units, timing=timing,
        input_feeding=input_feeding, rnn_type=config.rnn_type,
        attention_layer_norm=config.attention_layer_norm,
        attention_activation=config.attention_activation,
    )
    return AttentionSeq2Seq(
        build_encoder(config, source_vocab_size), target_vocab_size, config.embedding_dim, cell,
        fast_path="auto", dropout=config.dropout, name="translator",
    )
