"""End-to-end translation training on a toy language (seconds on 2 CPU cores).

The toy language translates a 10-word English-like vocabulary word by word
into Spanish-like words (first letter capitalized, final period), so a small
model can learn it in a few hundred steps while copying the source or
guessing words scores near zero BLEU.

Covers: learning well beyond chance (greedy and beam BLEU), the report and
its files, the SavedModel's layout and its use from a process that cannot
import this project, resuming after SIGKILL, corrupt checkpoints,
MirroredStrategy on two logical CPUs against the default strategy, and the
command line's error exits.
"""

import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import sacrebleu

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The toy dictionary: every English-like word has exactly one translation.
DICTIONARY = {
    "cat": "gato", "dog": "perro", "house": "casa", "book": "libro", "red": "rojo",
    "big": "grande", "sees": "ve", "eats": "come", "small": "pequeño", "green": "verde",
}
# Greedy test BLEU reached on this corpus with the settings below is 100 in
# trial runs (seeds 1234 and others); copying the source scores ~0-2 and
# random words of the right length ~2. The threshold leaves a wide margin.
BLEU_THRESHOLD = 60.0
BASELINE_CEILING = 15.0


def toy_translation(source):
    words = [DICTIONARY[w] for w in source.rstrip(".").split()]
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def toy_pairs(count, seed=7):
    rng = random.Random(seed)
    sources = set()
    while len(sources) < count:
        words = [rng.choice(sorted(DICTIONARY)) for _ in range(rng.randint(2, 8))]
        sources.add(" ".join(words) + ".")
    return [(s, toy_translation(s)) for s in sorted(sources)]


def write_tsv(path, pairs):
    with open(path, "w", encoding="utf-8") as handle:
        for source, target in pairs:
            handle.write(f"{source}\t{target}\n")
    return str(path)


def bleu(hypotheses, references):
    """Corpus BLEU as the project reports it (sacrebleu, lowercase)."""
    return sacrebleu.metrics.BLEU(lowercase=True).corpus_score(hypotheses, [references]).score


def tiny_config(**changes):
    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig

    return dataclasses.replace(config_lib.load(TranslationConfig, PRESETS, "tiny"), **changes)


def subprocess_env():
    env = dict(os.environ)
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    return env


def cli(*args):
    return [sys.executable, "-m", "training.translation", *args]


# ----------------------------------------------------- one shared training
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`train_and_evaluate` on the toy corpus, with the Translator it exported."""
    from training.translation import data as data_lib
    from training.translation import train as train_lib

    workdir = str(tmp_path_factory.mktemp("toy_run"))
    pairs = toy_pairs(3000)
    corpus = data_lib.split_by_hash(pairs, 0.05, 0.05)
    corpus.description = "toy corpus"
    data_lib.check_size(corpus)
    config = tiny_config(
        units=64, embedding_dim=64, attention_units=64, epochs=8, steps_per_epoch=50,
        learning_rate=0.01, max_eval_pairs=64, export_name="toy", export_version=3,
    )
    translators = []

    class RecordingTranslator(train_lib.Translator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            translators.append(self)

    logs = []
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_lib, "Translator", RecordingTranslator)
        report = train_lib.train_and_evaluate(config, workdir, corpus=corpus, log=logs.append)
    assert len(translators) == 1
    return dict(report=report, translator=translators[0], workdir=workdir, corpus=corpus,
                config=config, logs=logs, seconds=time.monotonic() - started)


def test_learns_the_toy_language_beyond_chance(trained):
    report, corpus, config = trained["report"], trained["corpus"], trained["config"]
    test = corpus.test[: config.max_eval_pairs]
    sources = [s for s, _ in test]
    references = [t for _, t in test]

    copy_baseline = bleu(sources, references)
    rng = random.Random(0)
    guesses = [" ".join(rng.choice(list(DICTIONARY.values())) for _ in s.split()) + "."
               for s in sources]
    chance_baseline = bleu(guesses, references)
    print(f"toy BLEU greedy {report['greedy']['bleu']}, beam {report['beam2']['bleu']}; "
          f"copy baseline {copy_baseline:.2f}, chance baseline {chance_baseline:.2f}; "
          f"train_and_evaluate {trained['seconds']:.0f} s")
    assert copy_baseline < BASELINE_CEILING and chance_baseline < BASELINE_CEILING

    assert report["greedy"]["bleu"] >= BLEU_THRESHOLD
    assert report["beam2"]["bleu"] >= BLEU_THRESHOLD
    # The reported score is the score of the hypotheses file.
    greedy_file = os.path.join(trained["workdir"], "test.hypotheses.greedy.txt")
    with open(greedy_file, encoding="utf-8") as f:
        hypotheses = f.read().split("\n")[:-1]
    assert bleu(hypotheses, references) == pytest.approx(report["greedy"]["bleu"], abs=0.01)
    exact = np.mean([h.lower() == r.lower() for h, r in zip(hypotheses, references)])
    assert exact >= 0.5


def test_report_files_plots_and_export_layout(trained):
    report, workdir, config = trained["report"], trained["workdir"], trained["config"]
    expected_pairs = min(config.max_eval_pairs, len(trained["corpus"].test))
    assert report["test_pairs"] == expected_pairs

    for name in ("greedy", "beam2"):
        scores = report[name]
        assert 0.0 <= scores["bleu"] <= 100.0 and 0.0 <= scores["chrf"] <= 100.0
        assert scores["bleu_signature"].startswith("nrefs:1|case:lc|")
        assert "version:" in scores["bleu_signature"]
        assert scores["chrf_signature"].startswith("nrefs:1|case:lc|")
        with open(os.path.join(workdir, f"test.hypotheses.{name}.txt"), encoding="utf-8") as f:
            assert len(f.read().split("\n")) - 1 == expected_pairs

    with open(os.path.join(workdir, "test.references.txt"), encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == [t for _, t in trained["corpus"].test[:expected_pairs]]
    with open(os.path.join(workdir, "report.json"), encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(report))

    assert report["plots"], "no attention plot drawn"
    for path in report["plots"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert report["examples"] and report["examples"][0]["attention"]

    export = os.path.join(workdir, "export", "toy", "3")
    assert os.path.normpath(report["export"]) == os.path.normpath(export)
    assert os.path.isfile(os.path.join(export, "saved_model.pb"))
    assert os.path.isdir(os.path.join(export, "variables"))
    for name in ("config.json", "vocabulary.source.json", "vocabulary.target.json",
                 "model.keras", "checkpoints/latest.json"):
        assert os.path.exists(os.path.join(workdir, name)), name


def test_hypotheses_file_matches_in_process_translator(trained):
    import tensorflow as tf

    test = trained["corpus"].test[: trained["report"]["test_pairs"]]
    out = trained["translator"].translate(tf.constant([s for s, _ in test]))
    translations = [t.decode("utf-8") for t in out["translation"].numpy()]
    greedy_file = os.path.join(trained["workdir"], "test.hypotheses.greedy.txt")
    with open(greedy_file, encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == translations


def test_saved_keras_model_loads_with_its_loss(trained):
    import keras

    from training.core import fitting  # noqa: F401 (registers the loss and metric)

    loaded = keras.saving.load_model(os.path.join(trained["workdir"], "model.keras"))
    inputs = {"source": np.array([[4, 5, 6, 0], [7, 8, 9, 10]], "int32"),
              "target_in": np.array([[2, 5, 6], [2, 7, 0]], "int32")}
    np.testing.assert_allclose(loaded(inputs), trained["translator"].model(inputs),
                               rtol=1e-5, atol=1e-5)
    assert loaded.loss.label_smoothing == trained["config"].label_smoothing


EXPORT_CHECK = textwrap.dedent(r"""
    import json, sys

    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("keras_attention", "training"):
                raise ImportError("blocked: " + name)
            return None

    sys.meta_path.insert(0, Blocked())
    for name in ("keras_attention", "training"):
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(name + " is importable")

    import tensorflow as tf

    export_dir, texts = sys.argv[1], json.loads(sys.argv[2])
    texts = [t.encode("latin-1") for t in texts]  # raw bytes, not necessarily UTF-8
    loaded = tf.saved_model.load(export_dir)
    greedy = loaded.signatures["serving_default"](text=tf.constant(texts))
    beam = loaded.signatures["beam_search"](text=tf.constant(texts))
    as_text = lambda a: a.decode("utf-8")
    print("RESULT " + json.dumps({
        "translation": [as_text(t) for t in greedy["translation"].numpy()],
        "length": greedy["length"].numpy().tolist(),
        "source_tokens": [[as_text(w) for w in row if w]
                          for row in greedy["source_tokens"].numpy()],
        "beam": [[as_text(t) for t in row] for row in beam["translations"].numpy()],
        "beam_lengths": beam["lengths"].numpy().tolist(),
        "beam_scores": beam["scores"].numpy().tolist(),
        "blocked_modules": sorted(m for m in sys.modules
                                  if m.split(".")[0] in ("keras_attention", "training")),
    }))
""")


def test_export_runs_without_the_package(trained, tmp_path):
    import tensorflow as tf

    config = trained["config"]
    normal = ["cat sees dog.", "the big red book eats green house.", "Small cat, big dog!",
              "zebra eats cat."]
    long_text = " ".join(["green dog"] * (config.max_source_tokens + 20))  # 2x that many words
    texts = [b"", *(t.encode() for t in normal), long_text.encode(), b"\xff\xfe abc"]
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_CHECK, os.path.abspath(trained["report"]["export"]),
         json.dumps([t.decode("latin-1") for t in texts])],
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    assert out["blocked_modules"] == []

    # "" -> "" with length 0, in both signatures.
    assert out["translation"][0] == "" and out["length"][0] == 0
    assert set(out["beam"][0]) == {""} and set(out["beam_lengths"][0]) == {0}
    assert len(out["beam"][0]) == min(config.num_hypotheses, config.beam_width)
    # The long input is cut at max_source_tokens; the output at max_target_tokens.
    long_row = 1 + len(normal)
    assert len(out["source_tokens"][long_row]) == config.max_source_tokens
    assert 0 < out["length"][long_row] <= config.max_target_tokens
    # Invalid UTF-8 became U+FFFD before tokenization.
    assert out["source_tokens"][-1] == ["\ufffd", "\ufffd", "abc"]
    assert all(np.isfinite(s) for row in out["beam_scores"] for s in row)

    # Same translations as the in-process Translator, alone or in this batch.
    translator = trained["translator"]
    alone = translator.translate(tf.constant(normal))["translation"].numpy()
    batch = translator.translate(tf.constant(texts))["translation"].numpy()
    assert out["translation"][1:long_row] == [t.decode() for t in alone]
    assert out["translation"] == [t.decode() for t in batch]
    beam_alone = translator.translate_beam(tf.constant(normal))["translations"].numpy()
    assert [row[0] for row in out["beam"][1:long_row]] == [r[0].decode() for r in beam_alone]
    # And the toy sentence is translated right.
    assert out["translation"][1].lower() == toy_translation("cat sees dog.").lower()


# ---------------------------------------------------------------- resume
def test_resume_after_sigkill(tmp_path):
    data_file = write_tsv(tmp_path / "toy.tsv", toy_pairs(600))
    config_file = tmp_path / "long.json"
    config_file.write_text(json.dumps({
        "data": "files", "data_files": data_file, "epochs": 1000, "steps_per_epoch": 10,
        "max_train_seconds": 3, "max_eval_pairs": 8, "early_stopping_patience": 0,
    }), encoding="utf-8")
    workdir = tmp_path / "run"
    command = cli("--preset", "tiny", "--config", str(config_file), "--workdir", str(workdir))
    marker = workdir / "checkpoints" / "latest.json"

    with open(tmp_path / "first.log", "wb") as log:
        process = subprocess.Popen(command, cwd=tmp_path, env=subprocess_env(), stdout=log,
                                   stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    first_log = (tmp_path / "first.log").read_text(errors="replace")
    assert marker.exists(), first_log[-3000:]
    assert process.returncode == -signal.SIGKILL
    assert not (workdir / "report.json").exists()
    saved_epoch = json.loads(marker.read_text())["epoch"]
    assert saved_epoch >= 1

    second = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True,
                            text=True, timeout=300)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    resumed = re.search(r"resumed from (\S+) after epoch (\d+)", output)
    assert resumed, output[-3000:]
    assert resumed.group(1).endswith("latest.weights.h5")
    epoch = int(resumed.group(2))
    assert epoch >= max(1, saved_epoch)
    # Training went on from the next epoch, and the run finished.
    first_epoch_line = re.search(r"Epoch (\d+)/1000", output)
    assert first_epoch_line and int(first_epoch_line.group(1)) == epoch + 1
    report = json.loads((workdir / "report.json").read_text(encoding="utf-8"))
    assert report["config"]["epochs"] == 1000
    assert os.path.isfile(os.path.join(report["export"], "saved_model.pb"))
    assert json.loads(marker.read_text())["epoch"] > epoch


def test_restore_skips_corrupt_checkpoints(tmp_path):
    import keras

    from training.core import fitting

    def make_model():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(0.01), "mse")
        return model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 3)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    directory = str(tmp_path / "checkpoints")
    snapshots = []
    model = make_model()
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, callbacks=[
        fitting.ResumableCheckpoint(directory),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(
            ([w.copy() for w in model.get_weights()], int(model.optimizer.iterations)))),
    ])
    assert sorted(os.listdir(directory)) == ["latest.json", "latest.weights.h5",
                                             "previous.json", "previous.weights.h5"]

    def restored(expected_epoch):
        fresh, messages = make_model(), []
        initial = [w.copy() for w in fresh.get_weights()]
        epoch = fitting.restore(fresh, directory, log=messages.append)
        assert epoch == expected_epoch, messages
        if epoch:
            weights, iterations = snapshots[epoch - 1]
            for got, want in zip(fresh.get_weights(), weights):
                np.testing.assert_array_equal(got, want)
            assert int(fresh.optimizer.iterations) == iterations  # the optimizer state too
        else:
            for got, want in zip(fresh.get_weights(), initial):
                np.testing.assert_array_equal(got, want)
        return messages

    assert restored(3) == [f"resumed from {directory}/latest.weights.h5 after epoch 3"]

    latest = os.path.join(directory, "latest.weights.h5")
    with open(latest, "r+b") as handle:  # a write cut short
        handle.truncate(os.path.getsize(latest) // 2)
    messages = restored(2)
    assert "latest.weights.h5" in messages[0] and "unreadable" in messages[0]

    with open(os.path.join(directory, "previous.json"), "w") as handle:
        handle.write('{"epoch": ')
    messages = restored(0)
    assert len(messages) == 2 and all("skipping" in m for m in messages)

    os.remove(latest)  # a weights file missing altogether: previous is still unreadable
    assert restored(0)[0].startswith(f"checkpoint {directory}/previous.weights.h5")


# ---------------------------------------------------------------- mirrored
MIRRORED_CHECK = textwrap.dedent(r"""
    import dataclasses, json, os, sys

    from training.core import fitting
    fitting.split_cpu(2)  # before TensorFlow initializes

    import tensorflow as tf
    from training.core import config as config_lib
    from training.translation import data as data_lib
    from training.translation.config import PRESETS, TranslationConfig
    from training.translation.train import train

    data_file, workdir = sys.argv[1], sys.argv[2]
    corpus = data_lib.load_user_corpus(data_file)
    # eval_batch_size 8: the first dev batch is a full one, split evenly (see
    # test_mirrored_strategy_with_odd_first_dev_batch).
    config = dataclasses.replace(
        config_lib.load(TranslationConfig, PRESETS, "tiny"), dropout=0.0, epochs=2,
        steps_per_epoch=8, early_stopping_patience=0, learning_rate=0.005, eval_batch_size=8)
    results = {"cpus": len(tf.config.list_logical_devices("CPU")), "dev": len(corpus.dev)}
    runs = (("default", config), ("mirrored", config),
            ("mirrored_odd", dataclasses.replace(config, eval_batch_size=len(corpus.dev) + 1,
                                                 epochs=1, steps_per_epoch=1)))
    for name, run_config in runs:
        try:
            model, _, _, history = train(
                dataclasses.replace(run_config, strategy=name.split("_")[0]),
                os.path.join(workdir, name), corpus, log=lambda *a: None)
        except Exception as error:
            results[name] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
            continue
        results[name] = {
            "loss": history.history["loss"], "val_loss": history.history["val_loss"],
            "replicas": model.distribute_strategy.num_replicas_in_sync,
        }
    print("RESULT " + json.dumps(results))
""")


@pytest.fixture(scope="module")
def mirrored_results(tmp_path_factory):
    """Default vs MirroredStrategy (2 logical CPUs) in one fresh process."""
    tmp_path = tmp_path_factory.mktemp("mirrored")
    pairs = toy_pairs(600)
    data_file = write_tsv(tmp_path / "toy.tsv", pairs)
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_CHECK, data_file, str(tmp_path)],
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_mirrored_strategy_matches_default(mirrored_results):
    out = mirrored_results
    print(out)
    assert out["cpus"] == 2
    default, mirrored = out["default"], out["mirrored"]
    assert "error" not in default and "error" not in mirrored, out
    assert default["replicas"] == 1 and mirrored["replicas"] == 2
    assert len(default["loss"]) == len(mirrored["loss"]) == 2
    # Same initial weights, same batches; each replica averages over its own
    # half-batch's tokens, so the runs agree closely but not bit for bit. A
    # loss or gradient off by the number of replicas differs by far more.
    np.testing.assert_allclose(mirrored["loss"], default["loss"], rtol=0.02)
    np.testing.assert_allclose(mirrored["val_loss"], default["val_loss"], rtol=0.02)
    assert default["loss"][-1] < default["loss"][0]  # it did train


def test_mirrored_strategy_with_odd_first_dev_batch(mirrored_results):
    """Keras 3.15's evaluate() under a tf.distribute strategy first reduces the
    first batch with strategy.reduce("MEAN") (`_maybe_symbolic_build`), which
    fails when that batch does not split evenly over the replicas."""
    odd = mirrored_results["mirrored_odd"]
    if "error" in odd:
        pytest.xfail(f"known Keras issue, dev set of {mirrored_results['dev']} pairs in one "
                     f"batch on 2 replicas: {odd['error'][:200]}")
    assert odd["replicas"] == 2 and np.isfinite(odd["val_loss"]).all()


# ------------------------------------------------------------------- CLI
def test_cli_bad_corpus_file_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"one\tuno\ntwo\tdos\nthree without a tab\nfour\tcuatro\n")
    result = subprocess.run(
        cli("--preset", "tiny", "--set", "data=files", "--set", f"data_files={bad}",
            "--workdir", str(tmp_path / "run")),
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"{bad}:3:" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unknown_key_exits_nonzero_naming_it(tmp_path):
    result = subprocess.run(
        cli("--set", "nosuchkey=1", "--workdir", str(tmp_path / "run")),
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "nosuchkey" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
