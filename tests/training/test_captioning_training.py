"""Image captioning end to end on generated one-object scenes (about a
minute on 2 CPU cores): learning beyond chance, the report and its
localization recounted over pixels, the export in a process that cannot
import this project (PNG, JPEG, GIF, BMP, grayscale, RGBA, odd sizes), bad
bytes, and the doubly stochastic penalty."""

import io
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# One-object scenes have 2 sizes x 5 colours x 3 shapes = 30 captions: chance
# exact match is 1/30. The fixture's model (32x32 images, 200 steps of 16)
# got 66.7% and 62.5% with two training seeds, attention mass on the object
# 2.3 and 3.0 times the box's share of the image; with the same seed but
# another order of batches (the training stream of 2026-12), 40.6% greedy
# and 39.6% beam. The threshold asks for 9 times chance.
EXACT_MATCH_THRESHOLD = 30.0


def tiny_config(**changes):
    from caption_task_run import tiny_config as task_tiny_config
    from training.captioning.config import PRESETS, CaptioningConfig

    # Small images and no checkpoints to write: most of a step's cost was both.
    # Without label smoothing and the attention penalty it learns in fewer steps.
    values = dict(scene_max_objects=1, train_scenes=1500, dev_scenes=64, test_scenes=96,
                  image_size=32, units=64, embedding_dim=32, attention_units=32,
                  cnn_filters=16, batch_size=16, steps_per_epoch=50, epochs=4,
                  learning_rate=0.01, label_smoothing=0.0, attention_regularization=0.0,
                  dropout=0.0, checkpoint_steps=1000, export_name="cap", export_version=2,
                  plot_examples=2, meteor=False)
    values.update(changes)
    return task_tiny_config(CaptioningConfig, PRESETS, **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from caption_task_run import train_and_keep_exporter
    from training.captioning import train as train_lib

    return train_and_keep_exporter(train_lib, "Captioner", tiny_config(),
                                   str(tmp_path_factory.mktemp("captioning")))


@pytest.fixture(scope="module")
def greedy_answers(trained):
    """The in-process greedy answer for each test scene's PNG, one dict of
    numpy values per scene, in batches of the evaluation's size (the same
    arithmetic as the evaluation's)."""
    import tensorflow as tf

    captioner, batch_size = trained["captioner"], trained["config"].eval_batch_size
    pngs = [tf.io.encode_png(example.image).numpy() for example in trained["corpus"].test]
    rows = []
    for start in range(0, len(pngs), batch_size):
        out = captioner.greedy(tf.constant(pngs[start:start + batch_size]))
        out = {key: value.numpy() for key, value in out.items()}
        rows += [{key: value[row] for key, value in out.items()} for row in range(len(out["text"]))]
    return rows


def test_learns_one_object_scenes_beyond_chance(trained):
    report = trained["report"]
    print({k: report[k] for k in ("greedy", "localization", "training")})
    assert report["greedy"]["exact_match"] >= EXACT_MATCH_THRESHOLD
    assert report["greedy"]["bleu4"] > 50.0
    beam = report[f"beam{trained['config'].beam_width}"]
    assert beam["exact_match"] >= EXACT_MATCH_THRESHOLD
    # The object words look at the object: more attention in its box than
    # attention spread evenly over the image would put there.
    loc = report["localization"]
    assert loc["words"] > 0 and loc["mass"] > 1.5 * loc["chance"]


def test_report_files_and_plots(trained, greedy_answers):
    from caption_task_run import check_exact_match_recount, check_plots_and_examples, read_lines

    report, workdir, test = trained["report"], trained["workdir"], trained["corpus"].test
    assert report["test_images"] == trained["config"].test_scenes == len(test)
    # The greedy hypotheses are the model's captions of the test scenes.
    assert read_lines(workdir, "test.hypotheses.greedy.txt") == \
        [row["text"].decode() for row in greedy_answers]
    assert read_lines(workdir, "test.references.txt") == \
        [" | ".join(example.captions) for example in test]
    check_exact_match_recount(report, workdir, [example.captions for example in test],
                              trained["config"].beam_width)
    check_plots_and_examples(report)
    assert os.path.isfile(os.path.join(report["export"], "assets.extra", "metadata.json"))
    assert report["parameters"] > 0


def test_localization_equals_a_count_over_pixels(trained, greedy_answers):
    """The report's localization and its chance levels, recounted pixel by
    pixel from the greedy attention maps and the objects' true boxes."""
    from training.captioning.scenes import SIZES

    size = trained["config"].image_size
    masses, hits, chances, hit_chances = [], [], [], []
    for result, example in zip(greedy_answers, trained["corpus"].test):
        (scene_object,) = example.objects
        length = int(result["length"])
        words = [word.decode() for word in result["tokens"][:length]]
        attention = result["attention"][:length].astype(np.float64)  # --> [T, h, w]
        grid_h, grid_w = attention.shape[1:]
        assert size % grid_h == size % grid_w == 0  # whole pixels per cell
        cell_h, cell_w = size // grid_h, size // grid_w
        x0, y0, x1, y1 = scene_object.box
        in_box = np.zeros((size, size))
        in_box[y0:y1, x0:x1] = 1.0
        cell_share = in_box.reshape(grid_h, cell_h, grid_w, cell_w).mean(axis=(1, 3))
        # The pixel holding each cell's centre (box edges are whole pixels).
        centre_in_box = in_box[cell_h // 2::cell_h, cell_w // 2::cell_w]
        names = {scene_object.colour, scene_object.shape}
        for t, word in enumerate(words):
            # A size word names the object of the word after it.
            if word in names or (word in SIZES and t + 1 < length and words[t + 1] in names):
                weights = attention[t]
                masses.append(float((weights * cell_share).sum() / weights.sum()))
                row, column = np.unravel_index(np.argmax(weights), weights.shape)
                hits.append(centre_in_box[row, column])
                chances.append(in_box.mean())
                hit_chances.append(centre_in_box.mean())
    loc = trained["report"]["localization"]
    assert loc["words"] == len(masses) > 0
    for key, values in (("mass", masses), ("hit_rate", hits), ("chance", chances),
                        ("hit_chance", hit_chances)):
        assert loc[key] == pytest.approx(np.mean(values), rel=1e-6, abs=1e-12), key


def test_attention_text_view_names_the_peak_region():
    from training.captioning.evaluation import attention_text_view

    attention = np.full((2, 4, 4), 0.01)
    attention[0, 3, 1], attention[1, 0, 2] = 0.8, 0.5
    lines = attention_text_view(["red", "circle"], attention).split("\n")
    assert lines[0].startswith("red") and "row 3, col 1  0.80 ########" in lines[0]
    assert "row 0, col 2  0.50 #####" in lines[1]


def encoded_variants(image):
    """The same picture as PNG, JPEG, GIF, BMP, grayscale PNG, RGBA PNG and at an odd size."""
    from PIL import Image

    picture = Image.fromarray(image)
    out = {}
    for name, kind, converted in (("png", "PNG", picture), ("jpeg", "JPEG", picture),
                                  ("gif", "GIF", picture), ("bmp", "BMP", picture),
                                  ("gray", "PNG", picture.convert("L")),
                                  ("rgba", "PNG", picture.convert("RGBA")),
                                  ("odd", "PNG", picture.resize((97, 53)))):
        buffer = io.BytesIO()
        converted.save(buffer, format=kind)
        out[name] = buffer.getvalue()
    return out


def test_export_in_a_fresh_process_equals_in_process(trained, tmp_path):
    import tensorflow as tf

    from caption_task_run import read_lines, texts
    from export_check import check_metadata_matches_signatures, run_in_fresh_process

    captioner, test = trained["captioner"], trained["corpus"].test
    variants = encoded_variants(test[0].image)
    inputs = [variants[name] for name in sorted(variants)] + \
        [encoded_variants(example.image)["png"] for example in test[1:4]]
    out = run_in_fresh_process(trained["report"]["export"],
                               {"image_bytes": {"bytes": [b.decode("latin-1") for b in inputs]}},
                               cwd=tmp_path)
    check_metadata_matches_signatures(out)
    metadata = out["metadata"]
    assert metadata["task"] == "image_captioning"
    assert metadata["image_size"] == trained["config"].image_size
    h, w = metadata["grid_shape"]
    greedy, beam = out["signatures"]["serving_default"], out["signatures"]["beam_search"]
    assert greedy["text"] == texts(captioner.greedy(tf.constant(inputs)))
    assert beam["text"] == texts(captioner.beam(tf.constant(inputs)))
    attention = np.asarray(greedy["attention"])
    assert attention.shape[0] == len(inputs) and attention.shape[2:] == (h, w)
    for row, length in zip(attention, greedy["length"]):
        np.testing.assert_allclose(row[:length].sum(axis=(1, 2)), 1.0, atol=1e-4)
    # Lossless encodings of the same pixels give the same caption as the PNG.
    names = sorted(variants)
    png = greedy["text"][names.index("png")]
    for name in ("bmp", "rgba"):
        assert greedy["text"][names.index(name)] == png, name
    # The export's captions of test scenes 0 to 3 are the evaluation's.
    hypotheses = read_lines(trained["workdir"], "test.hypotheses.greedy.txt")
    assert [png, *greedy["text"][len(names):]] == hypotheses[:4]


def test_bytes_that_are_not_an_image_fail_with_a_clear_error(trained):
    import tensorflow as tf

    captioner = trained["captioner"]
    for bad in (b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20):
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            captioner.greedy(tf.constant([bad]))
        message = str(error.value)
        assert "image" in message.lower() or "png" in message.lower(), message[:300]


def test_doubly_stochastic_penalty_equals_numpy(rng):
    from training.core.seq2seq import doubly_stochastic_penalty

    weights = rng.random((3, 5, 7)).astype("float32")
    weights /= weights.sum(-1, keepdims=True)
    target_mask = np.ones((3, 5), bool)
    target_mask[1, 3:] = False
    memory_mask = np.ones((3, 7), bool)
    memory_mask[2, 5:] = False
    want = np.mean([
        np.mean([(1 - sum(weights[b, t, i] for t in range(5) if target_mask[b, t])) ** 2
                 for i in range(7) if memory_mask[b, i]])
        for b in range(3)])
    got = float(doubly_stochastic_penalty(weights, target_mask, memory_mask))
    assert got == pytest.approx(want, rel=1e-5)


def test_the_penalty_enters_the_training_loss_only(rng):
    import keras

    from training.captioning.model import build_model

    config = tiny_config(attention_regularization=2.0)
    model = build_model(config, 20)
    images = rng.integers(0, 255, (2, 64, 64, 3)).astype("uint8")
    inputs = {"source": images, "target_in": np.array([[2, 5, 6], [2, 7, 0]], "int32")}
    model(inputs)
    assert not model.losses
    _, weights = model(inputs, training=True, return_attention_scores=True)
    from training.core.seq2seq import doubly_stochastic_penalty

    expected = 2.0 * float(doubly_stochastic_penalty(weights, inputs["target_in"] != 0))
    assert len(model.losses) >= 1
    assert float(keras.ops.convert_to_numpy(model.losses[-1])) == pytest.approx(expected,
                                                                                rel=1e-4)


def test_word_referents_pick_the_one_matching_object():
    from training.captioning.evaluation import word_referents
    from training.captioning.scenes import generate_scenes

    scene = next(s for s in generate_scenes(50, seed=4) if len(s.objects) == 2
                 and len({o.colour for o in s.objects}) == len({o.shape for o in s.objects}) == 2)
    words = scene.caption.split()
    assert word_referents(words, scene.objects) == list(scene.word_objects)
    # A colour no object has names nothing.
    colours = {o.colour for o in scene.objects}
    other = next(c for c in ("red", "green", "blue", "yellow", "white") if c not in colours)
    assert word_referents(["a", other], scene.objects) == [-1, -1]


# ------------------------------------------------- attention supervision
def test_supervised_attention_loss_equals_numpy(rng):
    from training.core.seq2seq import supervised_attention_loss

    weights = rng.random((3, 5, 7)).astype("float32")
    weights /= weights.sum(-1, keepdims=True)
    target = rng.random((3, 5, 7)).astype("float32") * (rng.random((3, 5, 1)) < 0.6)
    target[0, 0] = 0.0  # an unsupervised word
    target[1, 4] = 1.0  # supervised, but a padding step
    target_mask = np.ones((3, 5), bool)
    target_mask[1, 4] = False
    terms = [-np.sum(target[b, t] / target[b, t].sum() * np.log(weights[b, t]))
             for b in range(3) for t in range(5) if target_mask[b, t] and target[b, t].sum() > 0]
    assert len(terms) >= 3
    got = float(supervised_attention_loss(weights, target, target_mask))
    assert got == pytest.approx(np.mean(terms), rel=1e-5)
    # Nothing supervised: 0, not NaN.
    assert float(supervised_attention_loss(weights, np.zeros_like(target), target_mask)) == 0.0


def test_attention_targets_are_the_named_objects_boxes_on_the_grid():
    from training.captioning import data as data_lib
    from training.captioning import train as train_lib
    from training.captioning.metrics import box_cells
    from training.core.text import SPECIAL_TOKENS, Vocabulary

    corpus = data_lib.load_generated(12, 1, 1, seed=5, image_size=64)
    words = sorted({w for e in corpus.train for c in e.captions for w in c.split()})
    vocabulary = Vocabulary(list(SPECIAL_TOKENS) + words, max_tokens=20)
    images, targets_in, targets_out, extras = train_lib.encode_examples(
        corpus.train, vocabulary, attention_grid=(4, 4), image_size=64)
    assert len(images) == len(targets_out) == len(extras) == 12
    named = 0
    for example, labels, extra in zip(corpus.train, targets_out, extras):
        target = extra["attention_target"]
        assert target.shape == (len(labels), 16) and target.dtype == np.float32
        caption_words = example.captions[0].split()
        assert len(labels) == len(caption_words) + 1  # the end token
        for t, k in enumerate([*example.word_objects, -1]):
            if k < 0:
                assert not target[t].any(), (caption_words, t)
                continue
            named += 1
            x0, y0, x1, y1 = example.objects[k].box
            np.testing.assert_allclose(target[t], box_cells((x0, y0, x1, y1), (4, 4), 64)[0])
            # By hand: a cell's row-major index and its share of the box.
            row, column = int(y0 // 16), int(x0 // 16)
            share = ((min(x1, 16 * column + 16) - x0) * (min(y1, 16 * row + 16) - y0)) / 256
            assert target[t, 4 * row + column] == pytest.approx(share)
    assert named >= 24  # every caption names its object by colour and shape
    # Without a grid: the three lists of the plain examples.
    assert len(train_lib.encode_examples(corpus.train, vocabulary)) == 3


def test_attention_supervision_enters_the_training_loss_and_needs_boxes(rng):
    import keras

    from training.captioning.model import build_model
    from training.core import config as config_lib
    from training.core.seq2seq import supervised_attention_loss

    config = tiny_config(attention_supervision=3.0)
    model = build_model(config, 20)
    images = rng.integers(0, 255, (2, 32, 32, 3)).astype("uint8")
    target = np.zeros((2, 3, 16), "float32")
    target[0, 1, :4] = 1.0
    inputs = {"source": images, "target_in": np.array([[2, 5, 6], [2, 7, 0]], "int32"),
              "attention_target": target}
    model(inputs)
    assert not model.losses
    _, weights = model(inputs, training=True, return_attention_scores=True)
    expected = 3.0 * float(supervised_attention_loss(weights, target, inputs["target_in"] != 0))
    assert expected > 0
    assert float(keras.ops.convert_to_numpy(model.losses[-1])) == pytest.approx(expected,
                                                                                rel=1e-4)
    assert type(model).from_config(model.get_config()).attention_supervision == 3.0

    with pytest.raises(config_lib.ConfigError,
                       match="attention_supervision: needs the object boxes of data=generated"):
        config_lib.check(tiny_config(attention_supervision=1.0, data="folder",
                                     images_dir="i", captions_file="c"))
    with pytest.raises(ValueError, match="`attention_supervision` must be >= 0"):
        build_model(tiny_config(attention_supervision=-1.0), 20)


def test_supervised_training_puts_the_attention_on_the_named_objects(tmp_path):
    """The same short run (the task's `train`, same seed and batches) with
    and without supervision: teacher-forced on training scenes, the object
    words' attention mass inside their boxes rises well above the
    unsupervised run's (trial: 0.37 against 0.16, chance 0.08; the most
    attended cell inside the box for 74% of the words against 38%)."""
    from training.captioning import train as train_lib
    from training.captioning.metrics import localization, summarize_localization

    masses = {}
    for weight in (0.0, 5.0):
        config = tiny_config(attention_supervision=weight, train_scenes=400, steps_per_epoch=40,
                             epochs=1, early_stopping_patience=0)
        corpus = train_lib.load_corpus(config)
        result, vocabulary = train_lib.train(config, str(tmp_path / f"run{weight}"), corpus,
                                             log=lambda *a: None)
        examples = corpus.train[:64]
        _, targets_in, _ = train_lib.encode_examples(examples, vocabulary)
        width = max(len(t) for t in targets_in)
        target_in = np.array([np.pad(t, (0, width - len(t))) for t in targets_in], "int32")
        _, weights = result.model({"source": np.stack([e.image for e in examples]),
                                   "target_in": target_in}, return_attention_scores=True)
        grid = result.model.encoder.grid_shape(config.image_size)
        records = []
        for example, rows in zip(examples, np.asarray(weights)):
            objects = [*example.word_objects, -1]
            records += localization(rows[:len(objects)], objects,
                                    [o.box for o in example.objects], grid, config.image_size)
        masses[weight] = summarize_localization(records)
    print(masses)
    unsupervised, supervised = masses[0.0], masses[5.0]
    assert supervised["words"] == unsupervised["words"] > 64
    assert supervised["mass"] > unsupervised["mass"] + 0.1
    assert supervised["mass"] > 3 * supervised["chance"]
    assert supervised["hit_rate"] > unsupervised["hit_rate"] + 0.15
