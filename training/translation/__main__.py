"""Train, evaluate and export a translation model.

    python -m training.translation                       # main preset, bundled en->es corpus
    python -m training.translation --set direction=es-en
    python -m training.translation --preset large --workdir runs/large
    python -m training.translation --set data=files --set data_files=my.tsv
    python -m training.translation --config my_config.json --set units=512

Rerunning the same command after an interruption resumes from the last
checkpoint in the workdir.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    from training.core import config as config_lib
    from training.translation.config import PRESETS, TranslationConfig
    from training.translation.data import CorpusError

    parser = argparse.ArgumentParser(
        prog="python -m training.translation", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    config_lib.add_arguments(parser, PRESETS, default_preset="main")
    parser.add_argument("--logical-cpus", type=int, default=0,
                        help="split the CPU into N logical devices (to try strategy=mirrored)")
    args = parser.parse_args(argv)
    try:
        config = config_lib.load(TranslationConfig, PRESETS, args.preset, args.config, args.set)
    except config_lib.ConfigError as error:
        parser.error(str(error))
    workdir = args.workdir or os.path.join("runs", f"translation-{args.preset}-{config.direction}")

    from training.core import fitting
    from training.translation.train import train_and_evaluate

    if args.logical_cpus:
        fitting.split_cpu(args.logical_cpus)
    if config.strategy != "default":
        fitting.make_strategy(config.strategy)  # before TensorFlow's first operation
    try:
        report = train_and_evaluate(config, workdir)
    except CorpusError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_report(report)
    return 0


def print_report(report):
    print("\n=== Translation examples (greedy) ===")
    for example in report.get("examples", []):
        print(f"\nsource:      {example['source']}")
        print(f"reference:   {example['reference']}")
        print(f"translation: {example['translation']}")
        if example["attention"]:
            print("attention (output word <- most attended source words):")
            print("  " + example["attention"].replace("\n", "\n  "))
    print("\n=== Test set ({} pairs) ===".format(report["test_pairs"]))
    for name, scores in report.items():
        if isinstance(scores, dict) and "bleu" in scores:
            print(f"{name:>8}: BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
                  f"({scores['seconds']} s)")
            print(f"          {scores['bleu_signature']}")
    print(f"\nattention plots: {os.path.dirname(report['plots'][0]) if report.get('plots') else '-'}")
    print(f"hypotheses:      {report['workdir']}/test.hypotheses.*.txt")
    print(f"SavedModel:      {report['export']}")
    print(f"report:          {report['workdir']}/report.json  ({report['total_seconds']} s in all)")


if __name__ == "__main__":
    sys.exit(main())
