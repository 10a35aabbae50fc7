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
"""

import sys

from training.core import cli, reports
from training.video.config import PRESETS, VideoConfig


def print_report(report):
    reports.print_caption_report(
        report, "attention (word <- most attended frame; a bar over the clip's frames)",
        f"{report['test_clips']} clips, model {report['model']}")
    loc = report.get("localization")
    if loc is not None and not loc["words"]:  # an untrained model names no event
        print("temporal localization: no decoded word names an event (0 event words), "
              "nothing to score")
    elif loc is not None:
        print(f"temporal localization ({loc['words']} event words): attention mass in the "
              f"event's frames {loc['mass']:.3f}, most-attended frame inside them "
              f"{loc['hit_rate']:.3f} (chance {loc['chance']:.3f}), within a frame of them "
              f"{loc['near_hit_rate']:.3f} (chance {loc['near_chance']:.3f})")
        if loc.get("action_words"):
            print(f"  action words ({loc['action_words']}: verbs, directions, new colours): "
                  f"mass {loc['action_mass']:.3f}, most-attended frame inside "
                  f"{loc['action_hit_rate']:.3f} (chance {loc['action_chance']:.3f})")
        if loc.get("hit_rate_by_role"):
            print("  most-attended frame inside the event, by word: " + ", ".join(
                f"{role} {rate:.3f}" for role, rate in loc["hit_rate_by_role"].items()))
    reports.print_run_summary(report)


TASK = cli.Task(
    name="video", description=__doc__, config_class=VideoConfig, presets=PRESETS,
    print_report=print_report,
    workdir_suffix=lambda config: "" if config.model == "attention" else f"-{config.model}",
    data_error="training.video.data:VideoDataError",
)

if __name__ == "__main__":
    sys.exit(cli.main(TASK))
