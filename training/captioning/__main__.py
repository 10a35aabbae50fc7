"""Train, evaluate and export an image captioner (Show, Attend and Tell).

    python -m training.captioning                       # main preset, generated scenes
    python -m training.captioning --preset tiny         # seconds, for CI
    python -m training.captioning --set data=folder --set images_dir=Images \\
        --set captions_file=captions.txt                # the Flickr8k layout
    python -m training.captioning --set data=coco --set image_size=128 --set encoder=resnet50
    python -m training.captioning --set encoder=mobilenet_v3_small --set backbone_weights=imagenet

Rerunning the same command after an interruption resumes at the step where
it stopped; `--restart` starts over.
"""

import os
import sys

from training.captioning.config import PRESETS, CaptioningConfig
from training.core import cli


def run(config, workdir):
    from training.captioning.train import train_and_evaluate

    return train_and_evaluate(config, workdir)


def input_errors():
    from training.captioning.data import CaptionDataError

    return (CaptionDataError,)


def print_report(report):
    print("\n=== Captions (greedy) ===")
    for example in report.get("examples", []):
        print(f"  reference: {example['reference']}")
        print(f"  caption:   {example['caption']}")
        if example.get("attention"):
            print("  attention (word <- most attended region of the grid, row 0 at the top):")
            print("    " + example["attention"].replace("\n", "\n    "))
        print()
    print(f"=== Test set ({report['test_images']} images) ===")
    for name, scores in report.items():
        if isinstance(scores, dict) and "bleu4" in scores:
            print(f"{name:>8}: exact match {scores['exact_match']:.1f}%  BLEU-4 "
                  f"{scores['bleu4']:.1f}  ROUGE-L {scores['rouge_l']:.1f}  CIDEr-D "
                  f"{scores['cider_d']:.1f}"
                  + (f"  METEOR {scores['meteor']:.1f}" if "meteor" in scores else "")
                  + f"  ({scores['seconds']} s)")
            for skipped in scores.get("skipped", []):
                print(f"          skipped {skipped}")
    if "localization" in report:
        loc = report["localization"]
        print(f"localization ({loc['words']} object words): attention mass in the named "
              f"object {loc['mass']:.3f} (chance {loc['chance']:.3f}); most-attended region "
              f"inside it {loc['hit_rate']:.3f} (chance {loc['hit_chance']:.3f})")
    training = report["training"]
    print(f"\ntraining:        {training['steps']} steps in {training['seconds']} s "
          f"(stopped by {training['stopped_by']}), {report['parameters']:,} parameters")
    print(f"attention plots: {os.path.dirname(report['plots'][0]) if report.get('plots') else '-'}")
    print(f"SavedModel:      {report['export']}")
    print(f"report:          {report['workdir']}/report.json  ({report['total_seconds']} s in all)")


TASK = cli.Task(
    name="captioning", description=__doc__, config_class=CaptioningConfig, presets=PRESETS,
    default_preset="main", run=run, print_report=print_report,
    default_workdir=lambda config, preset: os.path.join("runs", f"captioning-{preset}"),
    input_errors=input_errors,
)

if __name__ == "__main__":
    sys.exit(cli.main(TASK))
