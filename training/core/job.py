"""The whole job of every task: train (or resume), export, evaluate, report.

A task hands `run` its own pieces (how to load its corpus, train, build
its exporter and evaluate); the order, the backends and the report are
the same for every task.
"""

import time

from training.core import backend_export
from training.core import config as config_lib
from training.core import distribution
from training.core.checkpoints import Checkpointer
from training.core.evaluation import finish_report


def run(config, workdir, corpus, log, *, task_name, load_corpus, train, make_exporter,
        evaluate):
    """Checks the config, joins the cluster (`distribution=data_parallel`)
    and checks that every process would resume at the same checkpoint step,
    loads the corpus (unless given), trains, exports, evaluates and writes
    `workdir/report.json`.

    On the TensorFlow backend the model is exported in-process; on another
    (JAX), process 0 saves `model.keras`, exports it in a TensorFlow
    subprocess (`--export-only`) and evaluates that export, and the other
    processes of a data-parallel cluster stop after training
    (`backend_export.export_trained`).

    Args:
        config: The task's `TrainingConfig`.
        corpus: The task's corpus, or None to `load_corpus(config)`.
        task_name: The package under `training` (for `--export-only`).
        train: `(config, workdir, corpus, log) -> (fit_result, *artifacts)`,
            the artifacts what the exporter needs besides the model
            (vocabularies).
        make_exporter: `(config, model, corpus, *artifacts) ->
            SequenceExporter`.
        evaluate: `(config, exporter, corpus, workdir, log) -> report dict`;
            `exporter` is the exporter or the loaded export.

    Returns the report dict (None on a data-parallel process other than 0).
    A task declares its whole job with `whole_job`.
    """
    started = time.monotonic()
    config_lib.check(config)
    # A cluster whose processes would resume at different steps stops here,
    # before any of them reads its data or builds a model.
    distribution.setup(config)
    Checkpointer.of_run(workdir).agree_on_step()
    corpus = corpus or load_corpus(config)
    fit_result, *artifacts = train(config, workdir, corpus, log)
    model = fit_result.model
    export_path, exporter = backend_export.export_trained(
        config, task_name, model, fit_result.steps, workdir,
        lambda: make_exporter(config, model, corpus, *artifacts), log)
    if export_path is None:  # a data-parallel process other than 0
        return None
    report = evaluate(config, exporter, corpus, workdir, log)
    return finish_report(report, fit_result, export_path, workdir, config, started,
                         parameters=int(model.count_params()))


def prepare_training(config, workdir, corpus, load_corpus, log):
    """What every task's `train` does first: `config.prepare_run` (check,
    join the cluster, save the config, seed), then the corpus: `corpus`, or
    `load_corpus(config)` if None, its summary logged. Returns the corpus."""
    config_lib.prepare_run(config, workdir)
    corpus = corpus or load_corpus(config)
    log(corpus.summary())
    return corpus


def whole_job(task_name, *, load_corpus, train, make_exporter, evaluate):
    """A task's `train_and_evaluate(config, workdir, corpus=None, log=print)`:
    `run` with the task's own pieces (their signatures are `run`'s).

    Example (a task's `train.py`):

        train_and_evaluate = job.whole_job(
            "captioning", load_corpus=load_corpus, train=train,
            make_exporter=make_captioner, evaluate=evaluate)
    """

    def train_and_evaluate(config, workdir, corpus=None, log=print):
        """The whole job: train (or resume), export, evaluate, report
        (`training.core.job.run`).

        On the TensorFlow backend the trained model is exported in-process.
        On another backend (JAX) process 0 saves `model.keras` and exports
        it in a TensorFlow subprocess (`--export-only`), then evaluates that
        export; under `distribution=data_parallel` the other processes stop
        after training and write nothing.

        Args:
            config: The task's config.
            workdir: The run's folder: checkpoints, export, plots, report.
            corpus: The task's corpus; None: loaded as the config says.
            log: Where progress lines go.

        Returns the report dict, also written to `workdir/report.json`
        (None on a data-parallel process other than 0).
        """
        return run(config, workdir, corpus, log, task_name=task_name,
                   load_corpus=load_corpus, train=train, make_exporter=make_exporter,
                   evaluate=evaluate)

    return train_and_evaluate
