import os

import numpy as np
import pytest

# The real data beside the repository (../shared/data), or wherever MAPALIGN_DATA points.
DATA = os.environ.get("MAPALIGN_DATA") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "shared", "data")


def real_data(pair: str, probe: str) -> str:
    """The folder of a real pair; on CI its absence is a failure, elsewhere a skip that says
    why and how to point the tests at the data."""
    folder = os.path.abspath(os.path.join(DATA, pair))
    if not os.path.exists(os.path.join(folder, probe)):
        if os.environ.get("CI"):
            pytest.fail(f"{folder} is missing on CI")
        pytest.skip(f"real data not found at {folder}: set MAPALIGN_DATA to the folder that "
                    f"holds {pair}/")
    return folder


@pytest.fixture(scope="session")
def shared_data():
    """The real Spanish-English data (see ../shared/data/MANIFEST.md)."""
    return real_data("es-en", "es.vec")


def write_inputs(folder, vectors=None, dictionaries=None):
    """Small inputs written into ``folder`` (a ``pathlib.Path``): each ``{name: Embeddings}``
    as ``.vec`` text and each ``{name: pairs}`` as 'a b' lines. Returns ``{name: path}``."""
    from mapalign.synthetic import vec_bytes

    paths = {}
    for name, emb in (vectors or {}).items():
        paths[name] = folder / name
        paths[name].write_bytes(vec_bytes(emb))
    for name, pairs in (dictionaries or {}).items():
        paths[name] = folder / name
        paths[name].write_text("".join(f"{a} {b}\n" for a, b in pairs))
    return paths


def write_text(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)
    return str(path)


from mapalign import backend  # noqa: E402

import strict_xp  # noqa: E402

backend.register_device("strict", strict_xp.xp)


def _cupy_or_skip():
    xp = backend._cupy()
    if xp is None:
        pytest.skip("no GPU visible to CuPy here (the strict stand-in covers the device path)")
    return xp


@pytest.fixture(params=["numpy", "strict", "cupy"])
def device(request):
    """The device name a numeric test runs on: numpy, the strict stand-in for CuPy (always),
    and CuPy itself where a GPU is visible."""
    if request.param == "cupy":
        _cupy_or_skip()
        return "gpu"
    strict_xp.reset()
    return {"numpy": "cpu", "strict": "strict"}[request.param]


@pytest.fixture
def xp(device):
    return backend.get_xp(device)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
