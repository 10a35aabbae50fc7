"""A captioning task's whole job run once for a test module, keeping the
exporter it made (to call its functions in-process)."""

import pytest


def train_and_keep_exporter(train_lib, exporter_name, config, workdir):
    """`train_lib.train_and_evaluate(config, workdir)` with the task's
    exporter class `train_lib.<exporter_name>` recorded as it is made.

    Returns `dict(report, captioner, workdir, config, corpus)`.
    """
    made = []
    exporter_class = getattr(train_lib, exporter_name)

    class Recording(exporter_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    corpus = train_lib.load_corpus(config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_lib, exporter_name, Recording)
        report = train_lib.train_and_evaluate(config, workdir, corpus=corpus,
                                              log=lambda *a: None)
    return dict(report=report, captioner=made[0], workdir=workdir, config=config,
                corpus=corpus)
