"""The whole job of image and video captioning on the JAX backend, in a
subprocess (jax_training_script.py): training on JAX, the export by
TensorFlow in a subprocess (`--export-only`), the evaluation on that
export, whose greedy token ids equal the JAX model's in-process."""

import pytest
from jax_runs import run_single

pytestmark = [pytest.mark.slow, pytest.mark.jax]


@pytest.mark.parametrize("task", ["captioning", "video"])
def test_caption_tasks_train_on_jax_export_and_evaluate(task, tmp_path):
    out = run_single(task, tmp_path / "run")
    assert out["backend"] == "jax"
    assert out["steps"] == 3
    # The report scores the TensorFlow export of the JAX-trained weights.
    assert {"greedy", "plots", "export", "parameters"} <= set(out["report_keys"])
    assert {"model.keras", "report.json", "export", "plots"} <= set(out["workdir_files"])
    assert out["jax_ids"] == out["export_ids"]
    assert any(out["jax_ids"])
