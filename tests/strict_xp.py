"""A strict stand-in for CuPy: device arrays backed by numpy that refuse every implicit
conversion to the host and every mixing with host arrays, and count the explicit transfers.

Selected through mapalign's own backend switch (``device="strict"``), so the code paths that
CuPy takes are the ones these tests run. ``COUNTS`` holds host->device copies (``h2d``),
device->host copies (``d2h``) and scalar reads that make a device wait (``sync``).
"""
from __future__ import annotations

import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

COUNTS = {"h2d": 0, "d2h": 0, "sync": 0}
# Functions whose output size depends on the data: CuPy reads that size back to the host, so
# each call waits for the device like a scalar read (counted as a ``sync``).
_SIZED_BY_DATA = {"nonzero", "flatnonzero", "argwhere", "unique"}


class ImplicitTransfer(TypeError):
    pass


def reset():
    for k in COUNTS:
        COUNTS[k] = 0


def _unwrap(x, what):
    if isinstance(x, StrictArray):
        return x._a
    if isinstance(x, np.ndarray):
        raise ImplicitTransfer(f"a host numpy array mixed with device arrays in {what}")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, what) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, what) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return StrictArray(x)
    if isinstance(x, np.generic):  # reductions give 0-d device arrays, as in CuPy
        return StrictArray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


class StrictArray(NDArrayOperatorsMixin):
    __slots__ = ("_a",)

    def __init__(self, a: np.ndarray):
        self._a = a

    # ---- no implicit way to the host
    def __array__(self, *args, **kwargs):
        raise ImplicitTransfer("implicit device->host conversion (use asnumpy / .get())")

    @property
    def __array_interface__(self):
        raise ImplicitTransfer("implicit device->host conversion through __array_interface__")

    def __iter__(self):
        raise ImplicitTransfer("iterating a device array (one host transfer per element)")

    def tolist(self):
        raise ImplicitTransfer("tolist() of a device array")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        inputs = _unwrap(inputs, f"numpy.{ufunc.__name__}")
        if out is not None:
            kwargs["out"] = _unwrap(out, f"numpy.{ufunc.__name__}")
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        if any(issubclass(t, np.ndarray) for t in types_):
            raise ImplicitTransfer(f"host and device arrays mixed in numpy.{func.__name__}")
        return _wrap(func(*_unwrap(args, func.__name__), **_unwrap(kwargs, func.__name__)))

    # ---- explicit transfers and scalar reads
    def get(self):
        COUNTS["d2h"] += 1
        return self._a.copy()

    def _scalar(self):
        COUNTS["sync"] += 1
        if self._a.size != 1:
            raise TypeError("only size-1 arrays can be read as scalars")
        return self._a.reshape(()).item()

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __index__(self):
        return int(self._scalar())

    def __bool__(self):
        return bool(self._scalar())

    def item(self):
        return self._scalar()

    # ---- array protocol
    def __getitem__(self, key):
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, StrictArray) and k.dtype == bool for k in keys):
            COUNTS["sync"] += 1  # a boolean mask: the result's size comes from the data
        return _wrap(self._a[_unwrap(key, "indexing")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "indexing")] = _unwrap(value, "assignment")

    def __len__(self):
        return len(self._a)

    def __repr__(self):
        return f"StrictArray(shape={self._a.shape}, dtype={self._a.dtype})"

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    T = property(lambda self: StrictArray(self._a.T))
    flags = property(lambda self: self._a.flags)

    def __getattr__(self, name):  # methods: argmax, sum, astype, reshape, copy, ...
        attr = getattr(self._a, name)
        if not callable(attr):
            raise AttributeError(name)

        def method(*args, **kwargs):
            if name in _SIZED_BY_DATA:
                COUNTS["sync"] += 1
            return _wrap(attr(*_unwrap(args, name), **_unwrap(kwargs, name)))
        return method


class _Generator:
    """numpy's Generator drawing 'on the device'."""

    def __init__(self, seed):
        self._g = np.random.default_rng(seed)

    def __getattr__(self, name):
        f = getattr(self._g, name)
        return lambda *a, **k: _wrap(f(*_unwrap(a, name), **_unwrap(k, name)))


def _function(f, name):
    def g(*args, **kwargs):
        if name in _SIZED_BY_DATA:
            COUNTS["sync"] += 1
        return _wrap(f(*_unwrap(args, name), **_unwrap(kwargs, name)))
    g.__name__ = name
    return g


class _Namespace(types.ModuleType):
    def __init__(self, name, source):
        super().__init__(name)
        self._source = source

    def __getattr__(self, name):
        value = getattr(self._source, name)
        if callable(value) and not isinstance(value, type):
            return _function(value, name)
        return value  # dtypes, constants


class _StrictModule(_Namespace):
    def __init__(self):
        super().__init__("strict_xp", np)
        self.linalg = _Namespace("strict_xp.linalg", np.linalg)
        self.random = types.SimpleNamespace(default_rng=_Generator)
        self.ndarray = StrictArray

    def asarray(self, a, dtype=None):
        if isinstance(a, StrictArray):
            return a if dtype is None else a.astype(dtype)
        COUNTS["h2d"] += 1
        return StrictArray(np.array(a, dtype=dtype))

    def asnumpy(self, a):
        return a.get() if isinstance(a, StrictArray) else np.asarray(a)


xp = _StrictModule()
StrictArray._mapalign_xp = xp
