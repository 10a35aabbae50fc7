"""Text recognition quality over seeds, printing a markdown table.

    python -m benchmarks.bench_ocr --seeds 1234 1 2 --workdir runs/bench-ocr
    python -m benchmarks.bench_ocr --seeds 1234 --set cnn_filters=16 --set batch_size=64

Each seed trains the main preset (`--set FIELD=VALUE` changes it, as on
`python -m training.ocr`) in `<workdir>/seed<N>`, so a finished seed is
evaluated again rather than retrained; the seed is the model's and the
data order's (the generated lines and test set are fixed). The table has
the steps trained, CER, word and line accuracy (greedy and beam) and
localization beside chance, with the mean ± sd over the seeds.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import (  # noqa: E402
    describe_machine, main_preset_over_seeds, markdown_table, spread)
from training.ocr import train as train_lib  # noqa: E402
from training.ocr.config import PRESETS, OcrConfig  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config field of the main preset (repeatable)")
    parser.add_argument("--workdir", help="where each seed trains (default: a new temporary "
                                          "folder)")
    args = parser.parse_args()
    root = args.workdir or tempfile.mkdtemp(prefix="bench_ocr_")
    runs = main_preset_over_seeds(train_lib, OcrConfig, PRESETS, args.seeds, args.set, root)
    reports, rows = [report for _, report in runs], []
    beam_name = f"beam{runs[0][0].beam_width}"
    for seed, report in zip(args.seeds, reports):
        greedy, beam = report["greedy"], report[beam_name]
        loc = report["localization"]
        rows.append([seed, report["training"]["steps"], f"{greedy['cer']:.2f}",
                     f"{greedy['word_accuracy']:.2f}", f"{greedy['line_accuracy']:.2f}",
                     f"{beam['word_accuracy']:.2f}",
                     f"{loc['hit_rate']:.3f} ({loc['hit_chance']:.3f})"])
    rows.append(["mean ± sd", spread([r["training"]["steps"] for r in reports], 0),
                 spread([r["greedy"]["cer"] for r in reports]),
                 spread([r["greedy"]["word_accuracy"] for r in reports]),
                 spread([r["greedy"]["line_accuracy"] for r in reports]),
                 spread([r[beam_name]["word_accuracy"] for r in reports]),
                 spread([r["localization"]["hit_rate"] for r in reports], 3)])
    print("\n".join(describe_machine()))
    print(f"\npreset main{''.join(' --set ' + s for s in args.set)}, "
          f"{reports[0]['test_lines']} generated test lines, "
          f"{reports[0]['parameters']:,} parameters\n")
    print(markdown_table(["seed", "steps", "greedy CER %", "greedy word accuracy %",
                          "greedy line accuracy %", f"{beam_name} word accuracy %",
                          "peak column on the character (chance)"], rows))


if __name__ == "__main__":
    main()
