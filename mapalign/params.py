"""scikit-learn's estimator contract without importing scikit-learn (which alone took 1.45 s
of every command's start-up): the parameters are the arguments of ``__init__``, stored
unchanged as attributes; ``get_params``/``set_params`` read and write them, and
``sklearn.base.clone`` works on mapalign's aligners (tested).

Every public method of a subclass other than those in ``_unfitted_ok`` needs a fitted model:
defining the class wraps it so that, called before ``fit``, it raises
:class:`~mapalign.errors.NotFittedError` (a method added later is covered without a line
of its own). ``__sklearn_is_fitted__`` answers scikit-learn's ``check_is_fitted``."""
from __future__ import annotations

import functools
import inspect

from .errors import NotFittedError


class Params:
    _unfitted_ok = frozenset({"fit", "get_params", "set_params"})
    _fitted_attr = None  # the attribute ``fit`` sets last (None: any attribute ending in _)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if name.startswith("_") or name in cls._unfitted_ok:
                continue
            if inspect.isfunction(value):
                setattr(cls, name, _needs_fit(value))
            elif isinstance(value, property) and value.fget is not None:
                setattr(cls, name, value.getter(_needs_fit(value.fget)))

    def __sklearn_is_fitted__(self) -> bool:
        if self._fitted_attr is not None:
            return hasattr(self, self._fitted_attr)
        return any(k.endswith("_") and not k.startswith("__") for k in vars(self))

    def __sklearn_tags__(self):
        """scikit-learn's tags (only scikit-learn asks, so importing it here costs nothing
        else); ``check_is_fitted`` reads them."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

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


def _needs_fit(method):
    """``method``, raising :class:`NotFittedError` when its instance is not fitted."""
    if getattr(method, "_needs_fit", False):
        return method

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit "
                                 f"(or load a saved model) before {method.__name__}")
        return method(self, *args, **kwargs)

    checked._needs_fit = True
    return checked
