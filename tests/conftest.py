from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests using it skip with a message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared benchmark data not found at {SHARED_DATA}; these tests need ../shared/data beside the checkout"
        )
    return SHARED_DATA
