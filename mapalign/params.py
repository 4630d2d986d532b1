"""scikit-learn's estimator contract without importing scikit-learn (which alone took 1.45 s
of every command's start-up): the parameters are the arguments of ``__init__``, stored
unchanged as attributes; ``get_params``/``set_params`` read and write them, and
``sklearn.base.clone`` works on mapalign's aligners (tested)."""
from __future__ import annotations

import inspect


class Params:
    @classmethod
    def _param_names(cls):
        if cls.__init__ is object.__init__:
            return []
        kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return sorted(p.name for p in inspect.signature(cls.__init__).parameters.values()
                      if p.name != "self" and p.kind not in kinds)

    def get_params(self, deep: bool = True) -> dict:
        """``{name: value}`` of the constructor's parameters (``deep``: with those of nested
        estimators as ``name__sub``)."""
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params):
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid: {', '.join(names)}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()} \
            if type(self).__init__ is not object.__init__ else {}
        shown = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                 if not (k in defaults and _same(defaults[k], v))]
        return f"{type(self).__name__}({', '.join(shown)})"


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b
