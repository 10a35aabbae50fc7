"""Train, evaluate and export a video captioner: attention over frames, or the
mean-pooled baseline.

    python -m training.video                            # main preset, generated clips
    python -m training.video --preset tiny              # seconds, for CI
    python -m training.video --set model=mean_pool      # Venugopalan et al. 2015's baseline
    python -m training.video --set temporal_encoder=none
    python -m training.video --set data=folder --set clips_dir=clips \\
        --set captions_file=captions.csv                # frame folders, GIFs, videos
    python -m training.video --set data=folder --set source=features \\
        --set clips_dir=features --set captions_file=captions.csv   # .npy [T, D] per clip

Rerunning the same command after an interruption resumes at the step where
it stopped; `--restart` starts over.
"""

import os
import sys

from training.core import cli
from training.video.config import PRESETS, VideoConfig


def run(config, workdir):
    from training.video.train import train_and_evaluate

    return train_and_evaluate(config, workdir)


def input_errors():
    from training.video.data import VideoDataError

    return (VideoDataError,)


def print_report(report):
    print("\n=== Captions (greedy) ===")
    for example in report.get("examples", []):
        print(f"  reference: {example['reference']}")
        print(f"  caption:   {example['caption']}")
        if example.get("attention"):
            print("  attention (word <- most attended frame; a bar over the clip's frames):")
            print("    " + example["attention"].replace("\n", "\n    "))
        print()
    print(f"=== Test set ({report['test_clips']} clips, model {report['model']}) ===")
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
        print(f"temporal localization ({loc['words']} event words): attention mass in the "
              f"event's frames {loc['mass']:.3f}, most-attended frame inside them "
              f"{loc['hit_rate']:.3f} (chance {loc['chance']:.3f}), within a frame of them "
              f"{loc['near_hit_rate']:.3f} (chance {loc['near_chance']:.3f})")
        if loc.get("hit_rate_by_role"):
            print("  most-attended frame inside the event, by word: " + ", ".join(
                f"{role} {rate:.3f}" for role, rate in loc["hit_rate_by_role"].items()))
    training = report["training"]
    print(f"\ntraining:        {training['steps']} steps in {training['seconds']} s "
          f"(stopped by {training['stopped_by']}), {report['parameters']:,} parameters")
    print(f"attention plots: {os.path.dirname(report['plots'][0]) if report.get('plots') else '-'}")
    print(f"SavedModel:      {report['export']}")
    print(f"report:          {report['workdir']}/report.json  ({report['total_seconds']} s in all)")


TASK = cli.Task(
    name="video", description=__doc__, config_class=VideoConfig, presets=PRESETS,
    default_preset="main", run=run, print_report=print_report,
    default_workdir=lambda config, preset: os.path.join(
        "runs", f"video-{preset}" + ("" if config.model == "attention" else f"-{config.model}")),
    input_errors=input_errors,
)

if __name__ == "__main__":
    sys.exit(cli.main(TASK))
