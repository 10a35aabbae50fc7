"""Every task's export applies and records every decoding option its config
accepts: the task builds its exporter from the config (`make_translator`,
`make_captioner`, `make_reader`), the options come back from `metadata.json`, and they
change what the export outputs.

`DecodingOptions` itself: its rules, each error naming the field."""

import dataclasses

import numpy as np
import pytest

WORDS = ["a", "red", "blue", "circle", "square", "moves", "left", "right"]
FAVOURED = 4  # the first word's id, after PAD, UNK, START, END
MAX_TOKENS = 5
# Off every preset's value, through the `--set` path (config validation).
OVERRIDES = ["beam_width=5", "num_hypotheses=3", "length_penalty=0.25",
             "no_repeat_ngram_size=1"]


def _config(task, *extra):
    import importlib

    from training.core import config as config_lib

    declaration = importlib.import_module(f"training.{task}.__main__").TASK
    return config_lib.load(declaration.config_class, declaration.presets, "tiny", None,
                           [*OVERRIDES, "dropout=0", *extra])


def _translation(vocabulary):
    from training.translation import train as train_lib

    config = _config("translation", f"max_target_tokens={MAX_TOKENS}", "recase=false")
    model = train_lib.build_model(config, vocabulary.size, vocabulary.size)
    model({"source": np.ones((1, 3), "int32"), "target_in": np.ones((1, 2), "int32")})
    exporter = train_lib.make_translator(config, model, None, vocabulary, vocabulary)
    return config, exporter, (np.array(["a red circle", "blue"]),)


def _captioning(vocabulary):
    from training.captioning import train as train_lib

    config = _config("captioning", f"max_caption_tokens={MAX_TOKENS}", "image_size=32")
    model = train_lib.build_model(config, vocabulary.size)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    model({"source": images, "target_in": np.ones((2, 2), "int32")})
    exporter = train_lib.make_captioner(config, model, None, vocabulary)
    return config, exporter, (np.array(train_lib.encode_png(images)),)


def _video(vocabulary):
    from training.video import train as train_lib

    config = _config("video", f"max_caption_tokens={MAX_TOKENS}")
    model = train_lib.build_model(config, vocabulary.size)
    size = config.frame_size
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, size, size, 3), dtype=np.uint8)
    lengths = np.array([4, 2], "int32")
    model({"source": {"frames": frames, "lengths": lengths},
           "target_in": np.ones((2, 2), "int32")})
    exporter = train_lib.make_captioner(config, model, None, vocabulary)
    return config, exporter, (frames, lengths)


def _ocr(vocabulary):
    from training.ocr import train as train_lib

    config = _config("ocr", f"max_characters={MAX_TOKENS}", "image_width=64")
    model = train_lib.build_model(config, vocabulary.size)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 64, 3), dtype=np.uint8)
    model({"source": images, "target_in": np.ones((2, 2), "int32")})
    exporter = train_lib.make_reader(config, model, None, vocabulary)
    return config, exporter, (np.array(train_lib.encode_png(images)),)


BUILDERS = {"translation": _translation, "captioning": _captioning, "video": _video,
            "ocr": _ocr}


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_every_task_applies_and_records_every_decoding_option(task, tmp_path):
    import tensorflow as tf

    from training.core import export as export_lib
    from training.core.decoding_options import DecodingOptions
    from training.core.text import END_ID, SPECIAL_TOKENS, Vocabulary

    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + WORDS, max_tokens=len(WORDS))
    config, exporter, inputs = BUILDERS[task](vocabulary)
    want = DecodingOptions(beam_width=5, num_hypotheses=3, length_penalty=0.25,
                           no_repeat_ngram_size=1)
    assert DecodingOptions.from_config(config) == want and exporter.decoding == want
    # An untrained model made to favour one word at every step and never to end:
    # without the rule it says that word MAX_TOKENS times.
    bias = exporter.model.output_projection.bias
    favour = np.zeros(bias.shape, "float32")
    favour[FAVOURED], favour[END_ID] = 50.0, -1e4
    bias.assign(favour)

    metadata = export_lib.read_metadata(exporter.save(str(tmp_path), "options", 1))
    assert metadata["no_repeat_ngram_size"] == 1
    beams = [s for s in metadata["signatures"].values() if s["decoding"] == "beam"]
    assert beams
    for described in beams:
        assert (described["beam_width"], described["num_hypotheses"],
                described["length_penalty"]) == (5, 3, 0.25)

    tensors = [tf.constant(value) for value in inputs]
    greedy = exporter.greedy(*tensors)
    beam = exporter.beam(*tensors)
    assert beam["token_ids"].shape[:2] == (len(inputs[0]), 3)  # num_hypotheses
    rows = [(ids[:n], "greedy") for ids, n in zip(greedy["token_ids"].numpy(),
                                                  greedy["length"].numpy())]
    rows += [(ids[:n], "beam") for hypotheses, lengths in zip(beam["token_ids"].numpy(),
                                                              beam["length"].numpy())
             for ids, n in zip(hypotheses, lengths)]
    for ids, signature in rows:
        assert len(ids) == MAX_TOKENS, (signature, ids)
        assert len(set(ids.tolist())) == len(ids), (signature, ids)  # no word twice
    assert all(ids[0] == FAVOURED for ids, signature in rows if signature == "greedy")


@pytest.mark.parametrize("values, message", [
    (dict(beam_width=0), "beam_width: must be >= 1, received 0"),
    (dict(num_hypotheses=0), "num_hypotheses: must be >= 1, received 0"),
    (dict(beam_width=2, num_hypotheses=3), r"num_hypotheses: must be <= beam_width \(2\)"),
    (dict(length_penalty=-0.5), "length_penalty: must be >= 0, received -0.5"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size: must be >= 0, received -1"),
])
def test_bad_options_are_refused_naming_the_field(values, message):
    from training.core.decoding_options import DecodingOptions

    with pytest.raises(ValueError, match=message):
        DecodingOptions(**values)


def test_options_come_from_the_config_and_are_frozen():
    from training.core.decoding_options import DecodingOptions

    config = _config("captioning")
    options = DecodingOptions.from_config(config)
    assert dataclasses.asdict(options) == {
        "beam_width": 5, "num_hypotheses": 3, "length_penalty": 0.25,
        "no_repeat_ngram_size": 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.beam_width = 1


def test_a_config_breaking_an_option_rule_names_the_field():
    from training.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"num_hypotheses: must be <= beam_width \(5\)"):
        _config("translation", "num_hypotheses=6")


def test_the_module_example_runs():
    import doctest

    from training.core import decoding_options

    result = doctest.testmod(decoding_options, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_an_exporter_given_loose_settings_says_what_it_takes():
    from training.core.text import SPECIAL_TOKENS, Vocabulary
    from training.translation.export import Translator

    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + WORDS, max_tokens=4)
    # The former positional beam_width: refused before the model is touched.
    with pytest.raises(TypeError, match="decoding: a DecodingOptions, received int"):
        Translator(None, vocabulary, vocabulary, 6, 4)
