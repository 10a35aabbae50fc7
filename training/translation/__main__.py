"""Train, evaluate and export a translation model.

    python -m training.translation                       # main preset, bundled en->es corpus
    python -m training.translation --set direction=es-en
    python -m training.translation --preset large --workdir runs/large
    python -m training.translation --set data=files --set data_files=my.tsv
    python -m training.translation --config my_config.json --set units=512
    python -m training.translation --set precision=mixed_bfloat16
    KERAS_BACKEND=jax python -m training.translation --preset tiny
    python -m training.translation --workdir runs/x --export-only

Rerunning the same command after an interruption resumes at the step where
it stopped; `--restart` starts over.
"""

import os
import sys

from training.core import cli, reports
from training.translation.config import PRESETS, TranslationConfig


def run(config, workdir):
    from training.translation.train import train_and_evaluate

    return train_and_evaluate(config, workdir)


def export(config, workdir):
    from training.translation.train import export_workdir

    return export_workdir(config, workdir)


def input_errors():
    from training.translation.data import CorpusError

    return (CorpusError,)


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
                  f"(cased: BLEU {scores['bleu_cased']:.2f})  ({scores['seconds']} s)")
            print(f"          {scores['bleu_signature']}")
    reports.print_run_summary(report, hypotheses="test.hypotheses.*.txt")

TASK = cli.Task(
    name="translation", description=__doc__, config_class=TranslationConfig, presets=PRESETS,
    default_preset="main", run=run, print_report=print_report,
    default_workdir=lambda config, preset: os.path.join(
        "runs", f"translation-{preset}-{config.direction}"),
    input_errors=input_errors, export=export,
)

if __name__ == "__main__":
    sys.exit(cli.main(TASK))
