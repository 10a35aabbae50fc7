"""Train, evaluate and export a text reader (text recognition in line images).

    python -m training.ocr                              # main preset, generated lines
    python -m training.ocr --preset tiny                # seconds, for CI
    python -m training.ocr --set data=folder --set images_dir=lines \\
        --set labels_file=labels.csv                    # "image,text" lines
"""

import sys

from training.core import cli, reports
from training.ocr.config import PRESETS, OcrConfig


def print_report(report):
    print("\n=== Examples (greedy; character <- image columns it looked at most) ===")
    for example in report.get("examples", []):
        print(f"\nreference: {example['reference']}\nread:      {example['text']}")
        print("  " + example["attention"].replace("\n", "\n  "))
    print(f"\n=== Test set ({report['test_lines']} lines) ===")
    for name, scores in reports.decodings(report, "cer"):
        print(f"{name:>8}: CER {scores['cer']:.2f}%  word accuracy "
              f"{scores['word_accuracy']:.2f}%  line accuracy {scores['line_accuracy']:.2f}%  "
              f"({scores['seconds']} s)")
    if "localization" in report:
        loc = report["localization"]
        print(f"localization ({loc['characters']} characters read right): most-attended "
              f"column on the character {loc['hit_rate']:.3f} (chance {loc['hit_chance']:.3f})")
    reports.print_run_summary(report, hypotheses="test.hypotheses.*.txt")


TASK = cli.Task(
    name="ocr", description=__doc__, config_class=OcrConfig, presets=PRESETS,
    print_report=print_report, data_error="training.ocr.data:OcrDataError",
)

if __name__ == "__main__":
    sys.exit(cli.main(TASK))
