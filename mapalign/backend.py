"""The one array-module switch: ``xp`` is :mod:`numpy` on the CPU or :mod:`cupy` on a GPU.

Every algorithm in mapalign takes arrays and calls ``get_array_module(arr)`` (or receives
``xp``) instead of importing numpy directly, so one code path serves both devices.
"""
from __future__ import annotations

import numpy as np

from .errors import MissingExtraError, option

DEVICES = ("cpu", "gpu", "auto")
# Further array modules by device name (the test suite registers a strict stand-in for CuPy
# here, so that the same switch that selects CuPy selects it).
_EXTRA = {}


def register_device(name: str, module) -> None:
    """Make ``device=name`` select ``module`` (an array module with numpy's interface whose
    array type names it in ``_mapalign_xp``)."""
    _EXTRA[name] = module


def _cupy():
    try:
        import cupy  # noqa: F401

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # ImportError, or a CUDA runtime without a device
        return None
    return None


def resolve_device(device: str = "cpu") -> str:
    """Turn ``cpu``, ``gpu`` or ``auto`` into ``cpu`` or ``gpu``; ``gpu`` without CuPy is an error."""
    if device in _EXTRA:
        return device
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    if device == "cpu":
        return "cpu"
    found = _cupy() is not None
    if device == "gpu" and not found:
        raise MissingExtraError(f"{option('device', 'gpu')} (CuPy and a GPU it sees)", "gpu")
    return "gpu" if found else "cpu"


def get_xp(device: str = "cpu"):
    """The array module for a device name (``cpu``/``gpu``/``auto``)."""
    device = resolve_device(device)
    if device in _EXTRA:
        return _EXTRA[device]
    return _cupy() if device == "gpu" else np


def _module_of(a):
    extra = getattr(type(a), "_mapalign_xp", None)
    if extra is not None:
        return extra
    if type(a).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def get_array_module(*arrays):
    """numpy or cupy (or a registered module), whichever holds ``arrays``; arrays of two
    devices together are an error, not a silent copy. Python scalars and None count for
    nothing."""
    found = None
    for a in arrays:
        if a is None or isinstance(a, (int, float, bool, np.generic)):
            continue
        mod = _module_of(a)
        if found is not None and mod is not found:
            raise TypeError(f"arrays of two devices mixed: {found.__name__} and "
                            f"{mod.__name__} (move one with to_device first)")
        found = mod
    return found or np


def to_device(a, xp):
    """Copy a host array to the device of ``xp`` (a no-op for numpy)."""
    return a if xp is np else xp.asarray(a)


def asnumpy(a) -> np.ndarray:
    """A numpy array from a numpy or cupy array."""
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def default_rng(xp, seed):
    """A seeded random generator that draws on the device of ``xp`` (numpy's or cupy's
    ``default_rng``), so random masks never cross the host-device bus."""
    return xp.random.default_rng(seed)
