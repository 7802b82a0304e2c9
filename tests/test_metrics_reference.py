"""Agreement with the reference implementation (TSB-AD 1.5) on the shared fixtures."""

import json
from pathlib import Path

import numpy as np
import pytest

from diffad.metrics import reference_metrics

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "metrics"


def _cases():
    if not (FIXTURES / "expected.json").is_file():
        return []
    return sorted(json.loads((FIXTURES / "expected.json").read_text()).items())


@pytest.mark.skipif(
    not (FIXTURES / "expected.json").is_file(), reason=f"metric fixtures not found at {FIXTURES}"
)
@pytest.mark.parametrize("key,expected", _cases(), ids=[k for k, _ in _cases()])
def test_matches_reference(key, expected):
    z = np.load(FIXTURES / "cases.npz")
    case = expected["case"]
    got = reference_metrics(z[f"{case}_labels"], z[f"{case}_score"], window=expected["window"])
    for name, value in got.items():
        tol = 1e-3 if name.startswith(("VUS", "R-AUC")) else 1e-6
        assert value == pytest.approx(expected[name], abs=tol), name
    for name in ("R-AUC-PR", "R-AUC-ROC"):
        if name in expected:  # the reference computes these only where its RangeAUC does not fail
            assert got[name] == pytest.approx(expected[name], abs=1e-3)
