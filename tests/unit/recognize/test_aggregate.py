from __future__ import annotations

import numpy as np
import pytest

from cctv_id.recognize.aggregate import aggregate


def test_weighted_mean_renormalised():
    e = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    out = aggregate(e, np.array([3.0, 1.0]))
    assert out.dtype == np.float32 and out.shape == (2,)
    assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(out, np.array([3, 1]) / np.sqrt(10), atol=1e-6)
    np.testing.assert_allclose(aggregate(e), np.array([1, 1]) / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(aggregate(e, np.zeros(2)), aggregate(e), atol=1e-7)
    np.testing.assert_allclose(aggregate(e[:1] * 5), [1, 0], atol=1e-7)


def test_bad_input():
    with pytest.raises(ValueError):
        aggregate(np.zeros((0, 4)))
    with pytest.raises(ValueError):
        aggregate(np.eye(2), np.array([1.0]))
    with pytest.raises(ValueError):
        aggregate(np.eye(2), np.array([1.0, -1.0]))
