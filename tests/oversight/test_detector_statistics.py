"""The statistics the detectors rest on, against figures worked by hand."""

from __future__ import annotations

import math

from openpars.oversight.detectors import _case_key, _robust_z, two_proportion_z


def test_robust_z_ignores_the_outliers_a_mean_would_follow() -> None:
    history = [3.0, 4.0, 3.0, 5.0, 4.0, 3.0, 60.0]  # one earlier burst
    # median 4, absolute deviations 1,0,1,1,0,1,56: MAD 1, scale 1.4826
    assert math.isclose(_robust_z(30, history), (30 - 4) / 1.4826)
    # A constant history has MAD 0: the scale is floored at one read, never divided by zero.
    assert _robust_z(7, [3.0] * 7) == 4.0


def test_two_proportion_z() -> None:
    # 52 of 107 against 55 of 250: pooled 107/357
    pooled = 107 / 357
    se = math.sqrt(pooled * (1 - pooled) * (1 / 107 + 1 / 250))
    assert math.isclose(two_proportion_z(52, 107, 55, 250), (52 / 107 - 55 / 250) / se)
    assert two_proportion_z(0, 0, 5, 10) == 0.0
    assert two_proportion_z(5, 10, 5, 10) == 0.0


def test_a_long_case_reference_is_keyed_by_its_digest() -> None:
    assert _case_key(3, "N1234567-8") == "agency:3:case:N1234567-8"
    key = _case_key(3, "X" * 200)
    assert key.startswith("agency:3:case:sha256:") and len(key) <= 200
