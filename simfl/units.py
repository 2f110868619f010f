"""Unit conversions used across simfl (decibels and milliwatts)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def dbm_to_w(dbm: ArrayLike) -> np.ndarray:
    """Power in dBm to watts: P = 10^(dBm/10) mW."""
    return 10.0 ** ((np.asarray(dbm, dtype=float) - 30.0) / 10.0)
