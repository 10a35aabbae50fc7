"""The text reader's line encoder: one annotation per 4 pixel columns; with
`column_rnn` a bidirectional GRU lets each annotation see the whole line."""

import numpy as np
import pytest


def line_encoder(**kwargs):
    from training.ocr.model import LineEncoder

    encoder = LineEncoder(filters=4, blocks=3, units=8, **kwargs)
    encoder.build((None, 32, 96, 3))
    return encoder


def annotations(encoder, images):
    columns, _ = encoder(images)
    return np.asarray(columns)  # --> [B, 24, 8]


@pytest.mark.parametrize("column_rnn", [False, True])
def test_a_far_change_reaches_the_first_column_only_through_the_rnn(column_rnn, rng):
    """The convolutions see about 30 pixels around a column: changing the
    line's last 32 pixels leaves the first column's annotation exactly as
    it was without the GRU, and moves it with it (an untrained GRU carries
    the change over 16 columns weakly: a few 1e-6, far above float32's
    rounding of the same computation, which gives exactly 0 here)."""
    encoder = line_encoder(column_rnn=column_rnn)
    images = rng.integers(0, 256, (1, 32, 96, 3)).astype("uint8")
    changed = images.copy()
    changed[:, :, 64:] = 255 - changed[:, :, 64:]
    before, after = annotations(encoder, images), annotations(encoder, changed)
    assert before.shape == (1, 24, 8)
    first_column_moved = np.abs(before[0, 0] - after[0, 0]).max()
    if column_rnn:
        assert first_column_moved > 1e-7
    else:
        assert first_column_moved == 0.0
    assert np.abs(before[0, -1] - after[0, -1]).max() > 1e-4  # the changed end moved


def test_config_round_trip_gives_the_same_annotations(rng):
    from training.ocr.model import LineEncoder

    encoder = line_encoder(column_rnn=True)
    images = rng.integers(0, 256, (2, 32, 96, 3)).astype("uint8")
    want = annotations(encoder, images)
    copy = LineEncoder.from_config(encoder.get_config())
    copy.build((None, 32, 96, 3))
    copy.set_weights(encoder.get_weights())
    assert copy.get_config()["column_rnn"] is True
    np.testing.assert_allclose(annotations(copy, images), want, rtol=1e-5, atol=1e-6)


def test_odd_units_with_the_rnn_are_refused():
    from training.ocr.model import LineEncoder

    with pytest.raises(ValueError, match="`units` must be even with `column_rnn`, received 7"):
        LineEncoder(units=7, column_rnn=True)
