"""The benchmarks' shared summary of a metric over seeds, against numpy."""

import math

import numpy as np
import pytest

from benchmarks.common import spread


def test_spread_is_the_mean_and_sample_sd_with_the_range():
    values = [26.13, 25.4, 27.02]
    mean, sd = np.mean(values), np.std(values, ddof=1)
    assert spread(values, 2) == f"{mean:.2f} ± {sd:.2f}"
    assert spread(values, 1, with_range=True) == f"{mean:.1f} ± {sd:.1f} [25.4..27.0]"


def test_spread_of_one_value_has_no_sd_and_skips_values_that_are_not_finite():
    assert spread([3.0]) == "3.00 ± 0.00"
    assert spread([1.0, math.nan, 3.0], 1) == f"2.0 ± {np.std([1.0, 3.0], ddof=1):.1f}"
    assert spread([math.nan, math.inf]) == "n/a"


@pytest.mark.parametrize("digits", [0, 3])
def test_spread_rounds_to_the_digits_asked(digits):
    values = [1.23456, 2.34567]
    assert spread(values, digits).split(" ± ")[0] == f"{np.mean(values):.{digits}f}"


def test_main_preset_over_seeds_runs_each_seed_in_its_own_workdir(tmp_path):
    """The main preset with `--set`-style settings, then the seed; one whole
    job a seed, in `<root>/seed<N>`, reports in the seeds' order."""
    from benchmarks.common import main_preset_over_seeds
    from training.ocr.config import PRESETS, OcrConfig

    class FakeTask:
        calls = []

        @classmethod
        def train_and_evaluate(cls, config, workdir):
            cls.calls.append((config, workdir))
            return {"seed": config.seed}

    runs = main_preset_over_seeds(FakeTask, OcrConfig, PRESETS, [7, 3],
                                  ["batch_size=8", "seed=99"], str(tmp_path))
    assert [report for _, report in runs] == [{"seed": 7}, {"seed": 3}]
    assert [workdir for _, workdir in FakeTask.calls] == [str(tmp_path / "seed7"),
                                                         str(tmp_path / "seed3")]
    config = runs[0][0]
    assert (config.batch_size, config.seed) == (8, 7)  # the seed comes last
    # Every other field is the main preset's.
    main = dict(PRESETS["main"], batch_size=8, seed=7)
    assert {name: getattr(config, name) for name in main} == main
