"""A fitted model's attributes as JSON: what ``save`` writes into a run's report and
:func:`mapalign.load` restores.

Every fitted attribute (a name ending in ``_``, scikit-learn's convention) is saved, whatever
the aligner and whenever it was added, except the arrays the run stores in its ``.npz``
(``ARRAYS`` of the class). A value JSON cannot hold is an error at save time, not an
attribute silently lost at load time. Dataclasses and numpy arrays are tagged and come back
as themselves; tuples come back as lists."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict

import numpy as np


def fitted_names(model):
    """The fitted attributes of ``model`` that its run's report holds."""
    arrays = set(getattr(model, "ARRAYS", ()))
    return sorted(k for k in vars(model)
                  if k.endswith("_") and not k.startswith("_") and k not in arrays)


def encode(value, name: str = "value") -> Any:
    """``value`` as JSON types (tagged where it would not come back as itself)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__dataclass__": type(value).__name__,
                **{f.name: encode(getattr(value, f.name), name)
                   for f in dataclasses.fields(value)}}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{name}: dictionary keys must be strings to be saved, "
                            f"not {sorted({type(k).__name__ for k in value})}")
        return {k: encode(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{name}: a {type(value).__name__} cannot be saved in a run's report")


def decode(value) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return np.array(value["__ndarray__"], dtype=value["dtype"])
    if "__dataclass__" in value:
        from . import methods
        from .unsupervised import adversarial

        fields = {k: decode(v) for k, v in value.items() if k != "__dataclass__"}
        cls = getattr(methods, value["__dataclass__"], None) or \
            getattr(adversarial, value["__dataclass__"])
        return cls(**fields)
    return {k: decode(v) for k, v in value.items()}


def fitted_attributes(model) -> Dict[str, Any]:
    """``{name: JSON value}`` of every fitted attribute of ``model`` but its arrays."""
    return {k: encode(getattr(model, k), k) for k in fitted_names(model)}


def restore(model, saved: Dict[str, Any]):
    """Set the attributes :func:`fitted_attributes` saved on ``model``."""
    for k, v in (saved or {}).items():
        setattr(model, k, decode(v))
    return model
