"""What a run's ``report.json`` holds, written once as data, and its check on read.

Every command reads a run's report through :func:`mapalign.store.read_run`, which checks it
here: a field of the wrong type, or a required field missing, is one error naming the file and
the field (``RUN/report.json: field 'settings.max_vocab' must be an integer, not 'abc'``)
instead of a ``TypeError`` deep inside a command.

A schema is a dict ``{field: spec}``; a field ending in ``?`` may be absent, ``*`` stands for
every other key (``"*": None``: no other key). A spec is a type name of :data:`TYPES` (``"int|null"``: either), a tuple of
the strings allowed, a nested schema (an object), or ``[spec]`` (a list of such items). Only
the fields the code reads are described; others are free.
"""
from __future__ import annotations

from typing import Any, Dict

from . import backend
from .loading import ENCODING_ERRORS, FORMATS, FormatError

TYPES = {  # name: (what a message calls it, test)
    "str": ("a string", lambda v: isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "null": ("null", lambda v: v is None),
    "list": ("a list", lambda v: isinstance(v, list)),
    "dict": ("an object", lambda v: isinstance(v, dict)),
    "device": (f"one of {', '.join(backend.DEVICES)}",
               lambda v: isinstance(v, str) and (v in backend.DEVICES or v in backend._EXTRA)),
}

FILE = {"path": "str", "bytes": "int", "mtime_ns?": "int", "sha256": "str", "words?": "int",
        "dim?": "int"}  # an input as recorded (mapalign.store.file_info)

# the dictionary-free quality a fit records (mapalign.quality: its reference is reused)
QUALITY = {"measure?": "str", "words?": "int", "targets?": "int", "csls_k?": "int",
           "reference_detail?": {"mean": "number", "draws": ["number"], "seed": "int|null",
                                 "maps": "str"}}

# every run directory: a fit's, fit-multi's, or a model saved from Python
RUN = {
    "mapping": {"file": "str", "sha256": "str"},
    "settings": {"normalize": "str", "max_vocab?": "int|null", "format?": FORMATS,
                 "encoding_errors?": ENCODING_ERRORS},
    "inputs": {"*": FILE},
    "device_used?": "device",
    "evaluations?": ["dict"],
    "exports?": ["dict"],
    "model?": {"class": "str", "params": "dict", "fitted?": "dict"},
    "seed?": "int|null",
    "timings_s?": {"*": "number"},
    "refine_choice?": {"rounds": "int", "heldout_p@1_by_round?": ["number|null"]},
    "unsupervised?": {"criterion": "number", "converged": "bool|null",
                      "convergence_test?": {"null_level?": "number|null",
                                            "margin?": "number|null"},
                      "restarts?": [{"seed": "int", "refinement?": ["dict"]}],
                      "null_draws?": [{"refinement?": ["dict"]}]},
    # what a run's verdict reads (mapalign.store.run_verdict)
    "warnings?": ["str"],
    "heldout_check?": {"p@1?": "number|null", "words?": "int|null"},
    "seed_dictionary?": {"pairs?": "int", "pairs_used?": "int", "pairs_oov?": "int"},
    "quality?": QUALITY,
    "multi?": {"hub_fits?": {"*": {"converged?": "bool|null"}}, "quality?": {"*": QUALITY},
               "seed_dictionaries?": {"*": {"pairs?": "int", "pairs_used?": "int",
                                            "pairs_oov?": "int"}}},
}

# the report of a run written by `fit` (not a model saved from Python): its inputs and how
# they were read
FIT = {"settings": {"max_vocab": "int|null", "format": FORMATS,
                    "encoding_errors": ENCODING_ERRORS},
       "inputs": {"source": FILE, "target": FILE}}

# a multilingual run (fit-multi, or MultiAligner.save): mapalign.multi.load_multi builds the
# model from these
MULTI = {
    "model": {"class": "str", "fitted?": "dict", "params": {
        "method?": "str", "hub?": "str", "refine?": "int", "rounds?": "int", "sweeps?": "int",
        "vocab?": "int", "csls_k?": "int", "criterion_vocab?": "int", "normalize?": "str",
        "device?": "device", "induce_pairs?": "str", "unsupervised?": "bool",
        "unsupervised_options?": "dict|null", "seed?": "int|null", "scheduler?": "str|null",
        "workers?": "int|null", "copy?": "bool", "*": None}},
    "multi": {"languages": ["str"], "hub": "str"},
}
FIT_MULTI = {"settings": FIT["settings"]}  # and an input for each language (check_report)


class ReportError(FormatError):
    """A run's report.json that is not what a run writes: names the file and the field."""


def check(value: Any, schema, path: str, where: str = "") -> None:
    """Raise :class:`ReportError` (naming ``path`` and the field) where ``value`` does not
    follow ``schema``."""
    if isinstance(schema, dict):
        _need(value, "dict", path, where)
        for key, spec in schema.items():
            name = key.rstrip("?")
            if name == "*":
                for k, v in value.items():
                    if k in schema or k + "?" in schema:
                        continue
                    if spec is None:  # a closed object: no other field
                        raise ReportError(path, None, f"field '{_join(where, k)}' is not one "
                                          f"of {', '.join(n.rstrip('?') for n in schema if n != '*')}")
                    check(v, spec, path, _join(where, k))
            elif name in value:
                check(value[name], spec, path, _join(where, name))
            elif not key.endswith("?"):
                raise ReportError(path, None, f"field '{_join(where, name)}' is missing")
    elif isinstance(schema, list):
        _need(value, "list", path, where)
        for i, item in enumerate(value):
            check(item, schema[0], path, f"{where}[{i}]")
    elif isinstance(schema, tuple):
        if value not in schema:
            raise ReportError(path, None, f"field '{where}' must be one of "
                              f"{', '.join(schema)}, not {_shown(value)}")
    else:
        _need(value, schema, path, where)


def _need(value, spec: str, path, where):
    names = spec.split("|")
    if not any(TYPES[n][1](value) for n in names):
        what = " or ".join(TYPES[n][0] for n in names)
        raise ReportError(path, None, f"field '{where or '(top level)'}' must be {what}, "
                          f"not {_shown(value)}")


def _join(where, key):
    return f"{where}.{key}" if where else key


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Report(dict):
    """A run's report as read, with the ``path`` of its file (for messages)."""

    path = "report.json"


def check_report(report: Dict, path: str, multi: bool) -> Report:
    """``report`` (read from ``path``) checked against what a run of its kind writes."""
    check(report, RUN, path)
    if multi:
        check(report, MULTI, path)
    if "command" in report:  # written by fit / fit-multi: names its inputs
        if multi:
            check(report, FIT_MULTI, path)
            for lang in report["multi"]["languages"]:
                if lang not in report["inputs"]:
                    raise ReportError(path, None, f"field 'inputs.{lang}' is missing")
        else:
            check(report, FIT, path)
    out = Report(report)
    out.path = path
    return out


def run_input(report: Dict, side: str) -> dict:
    """What a run recorded of its input ``side`` (a side or a language); a model saved from
    Python records none: that is said, naming the run's report."""
    info = report["inputs"].get(side)
    if info is None:
        raise ReportError(getattr(report, "path", "report.json"), None,
                          f"field 'inputs.{side}' is missing: the run does not name its "
                          f"{side} vectors (a model saved from Python?)")
    return info
