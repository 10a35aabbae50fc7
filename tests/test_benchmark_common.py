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
