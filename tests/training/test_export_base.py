"""The export base every task shares: only ops with a CPU kernel even when
traced where a GPU is visible, the version written whole, scoring helpers."""

import os

import numpy as np
import pytest
import sacrebleu


def small_translator(rnn_type):
    import keras

    from training.core.decoding_options import DecodingOptions
    from training.core.seq2seq import AttentionSeq2Seq, make_decoder_cell
    from training.core.encoders import RecurrentTextEncoder
    from training.core.text import Vocabulary, SPECIAL_TOKENS
    from training.translation.export import Translator

    words = list(SPECIAL_TOKENS) + ["a", "b", "c"]
    vocabulary = Vocabulary(words, max_tokens=8)
    model = AttentionSeq2Seq(
        RecurrentTextEncoder(len(words), 8, 4, rnn_type=rnn_type), len(words), 8,
        make_decoder_cell(8, "additive", 8, rnn_type=rnn_type))
    model({"source": np.ones((1, 3), "int32"), "target_in": np.ones((1, 2), "int32")})
    return Translator(model, vocabulary, vocabulary, 6,
                      DecodingOptions(beam_width=2, num_hypotheses=2)), keras


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_export_traced_with_a_gpu_visible_has_cpu_kernels_only(rnn_type, tmp_path, monkeypatch):
    """Keras' GRU/LSTM trace cuDNN's kernel where a GPU is visible; pretend
    one is, and the export must still hold no op without a CPU kernel."""
    import importlib

    tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

    from training.core import export as export_lib

    monkeypatch.setattr(tf_rnn, "_is_gpu_available", lambda: True)
    translator, _ = small_translator(rnn_type)
    path = translator.save(str(tmp_path / "export"), "m", 1)
    assert export_lib.ops_without_cpu_kernel(path) == []

    # The check can fail: the same export without the guard holds cuDNN ops
    # (a new exporter: an exporter traces its functions once).
    monkeypatch.setattr(export_lib, "without_cudnn", _no_guard)
    translator, _ = small_translator(rnn_type)
    path = translator.save(str(tmp_path / "unguarded"), "m", 1)
    missing = export_lib.ops_without_cpu_kernel(path)
    assert missing and all(op.startswith("Cudnn") for op in missing), missing


class _no_guard:
    def __init__(self, model):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_new_version_replaces_the_old_one_whole(tmp_path):
    from training.core import export as export_lib

    translator, _ = small_translator("gru")
    first = translator.save(str(tmp_path), "m", 2)
    marker = os.path.join(first, "stale.txt")
    open(marker, "w").close()
    second = translator.save(str(tmp_path), "m", 2)
    assert second == first and not os.path.exists(marker)
    assert sorted(os.listdir(tmp_path / "m")) == ["2"]  # no partial directory left
    metadata = export_lib.read_metadata(second)
    assert metadata["task"] == "translation"
    assert metadata["signatures"]["beam_search"]["num_hypotheses"] == 2
    assert metadata["signatures"]["serving_default"]["inputs"]["source_text"]["kind"] == "text"


def test_score_text_with_several_references_equals_sacrebleu():
    from training.core.evaluation import score_text

    hypotheses = ["the cat sat on the mat", "a dog barks", "Hello World"]
    references = [["the cat sat on the mat", "a cat sat"], "the dog barks",
                  ["hello there world", "greetings", "Hello World"]]
    scores = score_text(hypotheses, references)
    streams = [["the cat sat on the mat", "the dog barks", "hello there world"],
               ["a cat sat", None, "greetings"],
               [None, None, "Hello World"]]
    want = sacrebleu.metrics.BLEU(lowercase=True).corpus_score(hypotheses, streams).score
    assert scores["bleu"] == pytest.approx(want, abs=0.01)
    assert scores["bleu_signature"].startswith("nrefs:var|case:lc")
    # Lowercased and cased differ only by case: "a dog barks" vs "the dog barks" is unchanged.
    assert scores["bleu_cased"] <= scores["bleu"]
    assert score_text(["A B C D"], [["a b c d"]])["bleu"] == 100.0
    assert score_text(["A B C D"], [["a b c d"]])["bleu_cased"] < 100.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        score_text(["a", "b"], ["a"])


def test_an_exporter_with_several_inputs_and_variants(tmp_path):
    """Input variants: named inputs per signature pair, each described in
    metadata.json with its decoding, beam settings and axes."""
    import tensorflow as tf

    from saved_graph import while_loop_bodies
    from training.core import export as export_lib
    from training.core.export import InputVariant, SequenceExporter

    translator, _ = small_translator("gru")

    class TwoInputs(SequenceExporter):
        task = "toy"

        def input_variants(self):
            ids = tf.TensorSpec([None, None], tf.int32, name="ids")
            keep = tf.TensorSpec([None], tf.int32, name="keep")
            text = tf.TensorSpec([None], tf.string, name="text")
            return [InputVariant("serving_default", "beam_search", {"ids": ids, "keep": keep},
                                 {"ids": "token_ids", "keep": "length"}, self.prepare_ids,
                                 description="ids and how many to keep"),
                    InputVariant("text_greedy", "text_beam", {"text": text},
                                 {"text": "text"}, self.prepare_text)]

        def prepare_ids(self, ids, keep):
            ids = tf.where(tf.sequence_mask(keep, tf.shape(ids)[1]), ids, 0)
            batch = tf.shape(ids)[0]
            return ids, tf.fill([batch], 4), {"empty": keep == 0}, {}

        def prepare_text(self, text):
            source_vocabulary = translator.source_vocabulary
            return self.prepare_ids(source_vocabulary.encode(text), tf.fill(tf.shape(text), 3))

    exporter = TwoInputs(translator.model, translator.target_vocabulary, 5, translator.decoding)
    path = exporter.save(str(tmp_path), "toy", 1)
    metadata = export_lib.read_metadata(path)
    signatures = metadata["signatures"]
    assert sorted(signatures) == ["beam_search", "serving_default", "text_beam", "text_greedy"]
    assert signatures["serving_default"]["inputs"] == {
        "ids": {"dtype": "int32", "shape": [-1, -1], "kind": "token_ids"},
        "keep": {"dtype": "int32", "shape": [-1], "kind": "length"}}
    assert signatures["serving_default"]["description"] == "ids and how many to keep"
    assert "description" not in signatures["text_greedy"]
    for key, decoding in (("serving_default", "greedy"), ("text_greedy", "greedy"),
                          ("beam_search", "beam"), ("text_beam", "beam")):
        assert signatures[key]["decoding"] == decoding
        assert ("num_hypotheses" in signatures[key]) == (decoding == "beam")
        rows = ["batch", "hypothesis"] if decoding == "beam" else ["batch"]
        assert signatures[key]["output_axes"]["text"] == rows
    loaded = tf.saved_model.load(path)
    by_ids = loaded.signatures["serving_default"](ids=tf.constant([[4, 5, 6, 9]]),
                                                  keep=tf.constant([3]))
    by_text = loaded.signatures["text_greedy"](text=tf.constant(["a b c"]))
    assert by_ids["text"].numpy().tolist() == by_text["text"].numpy().tolist()
    by_method = exporter.greedy(tf.constant([[4, 5, 6, 9]]), tf.constant([3]))
    assert by_method["text"].numpy().tolist() == by_ids["text"].numpy().tolist()
    # Both variants prepare the same batch structure: their signatures run
    # one traced decoding loop per method, not a copy each; every signature
    # runs one traced encoder (its recurrent loops), `encode` included.
    loops = while_loop_bodies(path)
    assert loops["serving_default"] == loops["text_greedy"]
    assert loops["beam_search"] == loops["text_beam"]
    encoder = loops["serving_default"] & loops["beam_search"]
    assert len(encoder) == 2 and loops["encode"] == encoder  # the BiGRU's two directions
    assert len(loops["serving_default"] - encoder) == 1 and loops["beam_search"] - encoder
    assert loops["decode_step"] == set()  # one step: no loop

    class Misnamed(TwoInputs):
        def input_variants(self):
            return super().input_variants()[::-1]

    with pytest.raises(ValueError, match="first input variant"):
        Misnamed(translator.model, translator.target_vocabulary, 5, translator.decoding)
