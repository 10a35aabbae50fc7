"""What the translator's output options do, on a trained workdir (no
retraining: the same weights exported with each setting): the n-gram
repetition guard (how often outputs loop), the recaser (cased BLEU) and
what is written for `[UNK]`.

    python -m benchmarks.bench_repetition --workdir runs/translation-main-en-es

For each `no_repeat_ngram_size` (0 = off), with the recaser off, then for
`--recase-size` with the recaser on, and each signature (greedy, beam),
it translates the test set and prints BLEU (lowercased and cased,
sacrebleu), the share of outputs that repeat a 3-gram or a 4-gram (beside
the references' own rate: Bible verses repeat too), the share that stop
at their length limit (2 x source words + 10) instead of ending, the
outputs that write a word pair 3 times or more and the words copied from
the source for `[UNK]` (`training.translation.output_checks`).

`--unknown-words` lists the `unknown_words` settings of the
`--recase-size` rows (one pair of rows each; the other rows take the
first). `--ban-unknown` adds those rows once more with `[UNK]`'s output
bias at -1e9: the model never writes it, so nothing is copied and its
next-best word stands there instead.
"""

import argparse
import dataclasses
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import describe_machine, markdown_table  # noqa: E402


def repeats_ngram(text, n):
    words = text.lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def loop_rates(texts, lengths=None, limits=None):
    rates = {f"repeat {n}-gram %": 100 * sum(repeats_ngram(t, n) for t in texts) / len(texts)
             for n in (3, 4)}
    if lengths is not None:
        rates["at length limit %"] = 100 * sum(
            int(length) >= int(limit) for length, limit in zip(lengths, limits)) / len(texts)
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/translation-main-en-es")
    parser.add_argument("--sizes", default="0,4,3,2")
    parser.add_argument("--recase-size", type=int, default=4,
                        help="the guard size of the rows with the recaser on (-1: none)")
    parser.add_argument("--unknown-words", default="copy_names",
                        help="comma-separated unknown_words settings of the recaser rows")
    parser.add_argument("--ban-unknown", action="store_true",
                        help="also the recaser rows with [UNK] never written")
    args = parser.parse_args(argv)
    from training.translation.config import UNKNOWN_WORDS

    unknown_modes = args.unknown_words.split(",")
    for mode in unknown_modes:
        if mode not in UNKNOWN_WORDS:
            parser.error(f"--unknown-words: {mode!r} is not one of {', '.join(UNKNOWN_WORDS)}")

    import keras

    from training.core import config as config_lib
    from training.core import evaluation as core_evaluation
    from training.core.decoding_options import DecodingOptions
    from training.core.recasing import Recaser
    from training.core.text import UNK_ID
    from training.translation.config import PRESETS, TranslationConfig
    from training.translation.export import Translator
    from training.translation.output_checks import copied_words, looping_outputs
    from training.translation.train import load_corpus, vocabularies

    print("\n".join(describe_machine()))
    config = config_lib.load(TranslationConfig, PRESETS,
                             config_file=os.path.join(args.workdir, "config.json"))
    corpus = load_corpus(config)
    source_vocabulary, target_vocabulary = vocabularies(config, corpus, args.workdir)
    model = keras.saving.load_model(os.path.join(args.workdir, "model.keras"))
    test = corpus.test[: config.max_eval_pairs] if config.max_eval_pairs else corpus.test
    sources, references = [s for s, _ in test], [t for _, t in test]
    rows = [["references", "", "", "", "", "",
             *(f"{v:.1f}" for v in loop_rates(references).values()), "",
             str(looping_outputs(references)), "", ""]]
    settings = [(int(s), False, False, unknown_modes[0]) for s in args.sizes.split(",")]
    if args.recase_size >= 0:
        settings += [(args.recase_size, True, False, mode) for mode in unknown_modes]
        if args.ban_unknown:
            settings.append((args.recase_size, True, True, unknown_modes[0]))
        recaser = Recaser.from_texts([target for _, target in corpus.train])
    bias = model.output_projection.bias
    trained_bias = bias.numpy()
    for size, recase, ban, unknown_words in settings:
        bias.assign(np.where(np.arange(len(trained_bias)) == UNK_ID, -1e9, trained_bias)
                    if ban else trained_bias)
        translator = Translator(model, source_vocabulary, target_vocabulary,
                                config.max_target_tokens,
                                dataclasses.replace(DecodingOptions.from_config(config),
                                                    no_repeat_ngram_size=size),
                                recaser if recase else None, unknown_words)
        for name, signature in (("greedy", translator.greedy),
                                (f"beam{config.beam_width}", translator.beam)):
            results = core_evaluation.run_in_batches(signature, sources, config.eval_batch_size,
                                                     progress=False)
            texts = [core_evaluation.best_text(r) for r in results]
            lengths = [int(r["length"] if r["length"].ndim == 0 else r["length"][0])
                       for r in results]
            limits = [min(config.max_target_tokens, 2 * int(r["source_length"]) + 10)
                      for r in results]
            scores = core_evaluation.score_text(texts, references)
            rates = loop_rates(texts, lengths, limits)
            copies = copied_words(results, references)
            rows.append([str(size or "off"), "on" if recase else "off",
                         "never written" if ban else unknown_words, name,
                         f"{scores['bleu']:.2f}",
                         f"{scores['bleu_cased']:.2f}",
                         *(f"{v:.1f}" for v in rates.values()),
                         str(looping_outputs(texts)),
                         f"{copies['copied']} ({copies['copied_kept']})",
                         str(copies["left_out"])])
            print(rows[-1], flush=True)
    print()
    print(markdown_table(["no_repeat_ngram_size", "recaser", "[UNK]", "signature", "BLEU",
                          "BLEU cased", "repeat 3-gram %", "repeat 4-gram %",
                          "at length limit %", "a pair 3 times", "copied (kept)", "left out"],
                         rows))


if __name__ == "__main__":
    sys.exit(main())
