"""Train, evaluate and export a translation model.

    python -m training.translation                       # main preset, bundled en->es corpus
    python -m training.translation --set direction=es-en
    python -m training.translation --preset large --workdir runs/large
    python -m training.translation --set data=files --set data_files=my.tsv
    python -m training.translation --config my_config.json --set units=512
    python -m training.translation --set precision=mixed_bfloat16
    KERAS_BACKEND=jax python -m training.translation --preset tiny
    python -m training.translation --workdir runs/x --export-only
"""

import sys

from training.core import cli, reports
from training.translation.config import PRESETS, TranslationConfig


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
    for name, scores in reports.decodings(report, "bleu"):
        print(f"{name:>8}: BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
              f"(cased: BLEU {scores['bleu_cased']:.2f})  ({scores['seconds']} s)")
        print(f"          {scores['bleu_signature']}")
        copies = scores["copied_words"]
        shown = ", ".join(copies["examples"][:5])
        print(f"          {scores['looping_outputs']} of {report['test_pairs']} outputs "
              f"repeat a word pair 3 times or more; {copies['copied']} words copied "
              f"from the source ({copies['copied_kept']} kept by the reference)"
              + (f": {shown}" if shown else "")
              + (f"; {copies['left_out']} unknown words left out" if copies["left_out"] else ""))
    reports.print_run_summary(report, hypotheses="test.hypotheses.*.txt")


TASK = cli.Task(
    name="translation", description=__doc__, config_class=TranslationConfig, presets=PRESETS,
    print_report=print_report, data_error="training.translation.data:CorpusError",
    workdir_suffix=lambda config: f"-{config.direction}",
)

if __name__ == "__main__":
    sys.exit(cli.main(TASK))
