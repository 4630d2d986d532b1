import os

import numpy as np
import pytest

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "es-en")


@pytest.fixture(scope="session")
def shared_data():
    """The real Spanish-English data beside the repository; CI always has it."""
    if not os.path.exists(os.path.join(SHARED, "es.vec")):
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing on CI")
        pytest.skip("shared data not present")
    return os.path.abspath(SHARED)


def write_text(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)
    return str(path)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
