"""A client's search over an export's step-level signatures (`encode`,
`decode_step`), checked against the export's whole-sequence signatures:
every task's step tests share it."""

import numpy as np

from keras_attention.export_format import read_metadata


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
