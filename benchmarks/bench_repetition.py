"""What the translator's output options do, on a trained workdir (no
retraining: the same weights exported with each setting): the n-gram
repetition guard (how often outputs loop) and the recaser (cased BLEU).

    python -m benchmarks.bench_repetition --workdir runs/translation-main-en-es

For each `no_repeat_ngram_size` (0 = off), with the recaser off, then for
`--recase-size` with the recaser on, and each signature (greedy, beam),
it translates the test set and prints BLEU (lowercased and cased,
sacrebleu), the share of outputs that repeat a 3-gram or a 4-gram (beside
the references' own rate: Bible verses repeat too), and the share that
stop at their length limit (2 x source words + 10) instead of ending.
"""

import argparse
import dataclasses
import os
import sys

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
    args = parser.parse_args(argv)

    import keras

    from training.core import config as config_lib
    from training.core import evaluation as core_evaluation
    from training.core.decoding_options import DecodingOptions
    from training.core.recasing import Recaser
    from training.translation.config import PRESETS, TranslationConfig
    from training.translation.export import Translator
    from training.translation.train import load_corpus, vocabularies

    print("\n".join(describe_machine()))
    config = config_lib.load(TranslationConfig, PRESETS,
                             config_file=os.path.join(args.workdir, "config.json"))
    corpus = load_corpus(config)
    source_vocabulary, target_vocabulary = vocabularies(config, corpus, args.workdir)
    model = keras.saving.load_model(os.path.join(args.workdir, "model.keras"))
    test = corpus.test[: config.max_eval_pairs] if config.max_eval_pairs else corpus.test
    sources, references = [s for s, _ in test], [t for _, t in test]
    rows = [["references", "", "", "", "",
             *(f"{v:.1f}" for v in loop_rates(references).values()), ""]]
    settings = [(int(s), False) for s in args.sizes.split(",")]
    if args.recase_size >= 0:
        settings.append((args.recase_size, True))
        recaser = Recaser.from_texts([target for _, target in corpus.train])
    for size, recase in settings:
        translator = Translator(model, source_vocabulary, target_vocabulary,
                                config.max_target_tokens,
                                dataclasses.replace(DecodingOptions.from_config(config),
                                                    no_repeat_ngram_size=size),
                                recaser if recase else None)
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
            rows.append([str(size or "off"), "on" if recase else "off", name,
                         f"{scores['bleu']:.2f}",
                         f"{scores['bleu_cased']:.2f}",
                         *(f"{v:.1f}" for v in rates.values())])
            print(rows[-1], flush=True)
    print()
    print(markdown_table(["no_repeat_ngram_size", "recaser", "signature", "BLEU", "BLEU cased",
                          "repeat 3-gram %", "repeat 4-gram %", "at length limit %"], rows))


if __name__ == "__main__":
    sys.exit(main())
