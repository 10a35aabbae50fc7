"""Train, evaluate and export an image captioner (Show, Attend and Tell).

    python -m training.captioning                       # main preset, generated scenes
    python -m training.captioning --preset tiny         # seconds, for CI
    python -m training.captioning --set data=folder --set images_dir=Images \\
        --set captions_file=captions.txt                # the Flickr8k layout
    python -m training.captioning --set data=coco --set image_size=128 --set encoder=resnet50
    python -m training.captioning --set encoder=mobilenet_v3_small --set backbone_weights=imagenet
"""

import sys

from training.captioning.config import PRESETS, CaptioningConfig
from training.core import cli, reports


def print_report(report):
    reports.print_caption_report(
        report, "attention (word <- most attended region of the grid, row 0 at the top)",
        f"{report['test_images']} images")
    if "localization" in report:
        loc = report["localization"]
        print(f"localization ({loc['words']} object words): attention mass in the named "
              f"object {loc['mass']:.3f} (chance {loc['chance']:.3f}); most-attended region "
              f"inside it {loc['hit_rate']:.3f} (chance {loc['hit_chance']:.3f})")
    reports.print_run_summary(report)


TASK = cli.Task(
    name="captioning", description=__doc__, config_class=CaptioningConfig, presets=PRESETS,
    print_report=print_report, data_error="training.captioning.data:CaptionDataError",
)

if __name__ == "__main__":
    sys.exit(cli.main(TASK))
