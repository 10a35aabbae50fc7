"""The benchmarks' reference models decode through our exporters, as the
quality benchmarks score them: the tutorial translator's greedy answer is
the argmax, step by step, of its own `step`."""

import numpy as np

WORDS = ["the", "a", "red", "green", "dog", "cat", "sees", "runs", "."]


def test_the_reference_translator_decodes_through_our_exporter():
    import keras
    import tensorflow as tf

    from benchmarks.reference_nmt import ReferenceNMT
    from training.core.decoding_options import DecodingOptions
    from training.core.text import END_ID, SPECIAL_TOKENS, START_ID, Vocabulary
    from training.translation.export import Translator

    keras.utils.set_random_seed(3)
    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + WORDS, max_tokens=12)
    model = ReferenceNMT(vocabulary.size, vocabulary.size, units=8)
    model({"source": np.ones((1, 3), "int32"), "target_in": np.ones((1, 2), "int32")})
    translator = Translator(model, vocabulary, vocabulary, 12,
                            DecodingOptions(beam_width=2, num_hypotheses=2,
                                            no_repeat_ngram_size=0))
    texts = ["the red dog sees a cat .", "a cat runs"]
    answer = {key: value.numpy() for key, value in translator.greedy(tf.constant(texts)).items()}

    # The reference: the model's own step, its argmax fed back, no search code.
    source = vocabulary.encode(tf.constant(texts)).numpy()
    state, constants = [np.zeros((2, 8), "float32")], model.encode(source)
    tokens, chosen = np.full([2], START_ID, "int32"), []
    for _ in range(13):
        logits, state, _ = model.step(tokens, state, constants)
        tokens = np.argmax(np.asarray(logits), -1).astype("int32")
        chosen.append(tokens)
    chosen = np.stack(chosen, 1)
    for row, ids, length, text in zip(chosen, answer["token_ids"], answer["length"], texts):
        # The words before the end token, or before the row's limit (its
        # last position then forced to the end token); `length` omits it.
        limit = min(2 * len(text.split()) + 11, 13)
        words = list(row).index(END_ID) if END_ID in row[:limit] else limit - 1
        assert length == words, (row, ids, length)
        assert ids[:length].tolist() == row[:length].tolist()
    assert answer["attention"].shape[:2] == answer["token_ids"].shape

    beam = translator.beam(tf.constant(texts))
    assert beam["token_ids"].shape[:2] == (2, 2)  # [B, hypotheses, T]
