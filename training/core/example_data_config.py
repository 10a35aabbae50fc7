"""What the tasks whose examples the project generates, or reads from a
folder of files with a labels file, share: captioning, video and text
recognition.

`training.core.caption_config.CaptionTaskConfig` and
`training.ocr.config.OcrConfig` subclass it; the fields every task shares
are in `TrainingConfig`.
"""

import dataclasses
from typing import ClassVar

from training.core.config import TrainingConfig, option


@dataclasses.dataclass
class ExampleDataConfig(TrainingConfig):
    """The data fields of a generated-or-folder task, and the rule that
    `data=folder` names its folder and its labels file.

    A subclass names those two fields in `FOLDER_FIELDS`.

    Example:

    >>> @dataclasses.dataclass
    ... class Lines(ExampleDataConfig):
    ...     FOLDER_FIELDS = ("images_dir", "labels_file")
    ...     data: str = "generated"
    ...     images_dir: str = ""
    ...     labels_file: str = ""
    >>> Lines(data="folder", images_dir="lines").check_combinations()
    'images_dir: data=folder needs images_dir=DIR and labels_file=FILE'
    """

    # (the folder's field, the labels file's field) that data=folder needs.
    FOLDER_FIELDS: ClassVar[tuple] = ()

    data_seed: int = option(
        0, help="data=generated: seed of the generated examples; the same seed gives the "
                "same data set.")
    max_train_examples: int = option(
        0, minimum=0, help="Train on the first this many examples only; 0: all.")
    max_eval_examples: int = option(
        0, minimum=0, help="Test on the first this many test examples; 0: the whole test "
                           "split.")

    def check_combinations(self):
        if self.FOLDER_FIELDS and self.data == "folder":
            folder, labels = self.FOLDER_FIELDS
            if not (getattr(self, folder) and getattr(self, labels)):
                return f"{folder}: data=folder needs {folder}=DIR and {labels}=FILE"
        return None
