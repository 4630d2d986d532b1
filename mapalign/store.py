"""Run-directory storage: what ``fit``/``fit-multi`` (or ``model.save``) write and every later
command reads. The models say which arrays they are (:func:`mapalign.mapping.save_run`,
:func:`mapalign.multi.save_multi`); this module says how a run holds them.

A run directory holds ``mapping.npz`` (a two-language run's matrices and normalisation means;
``multi.npz`` for a multilingual run) and ``report.json`` (inputs with sizes, modification times and checksums, settings, seed, timings,
metrics, versions). ``report.json`` is written last and records the checksum of
``mapping.npz``, so a run interrupted while being overwritten is detected rather than used.
``RUN/cache/`` (see :mod:`mapalign.cache`) keeps what later commands reuse.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import warnings
from typing import Callable, List, Optional

import numpy as np

from .errors import in_cli, option
from . import lock
from .export import OutputExistsError, atomic_file, check_output_dir, write_json
from .loading import FormatError, check_input, load_embeddings
from .schema import check_report, run_input

REPORT = "report.json"
MAPPING = "mapping.npz"  # a two-language run's arrays
MULTI = "multi.npz"  # a multilingual run's arrays


class NotTwoLanguageRun(ValueError):
    """A two-language command was given a multilingual run directory."""


def sha256(path, block=1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def file_info(path, digest: Optional[dict] = None) -> dict:
    """Path, size, modification time and sha256 of an input; ``digest`` (``bytes`` and
    ``sha256``, as :func:`~mapalign.loading.load_dictionary` records them while reading) spares
    a second read, which a pipe would not allow."""
    path = os.path.abspath(os.fspath(path))
    st = os.stat(path)
    digest = digest or {"bytes": st.st_size, "sha256": sha256(path)}
    return {"path": path, "bytes": digest["bytes"], "mtime_ns": st.st_mtime_ns,
            "sha256": digest["sha256"]}


def _same_file(path, info, full: bool) -> bool:
    """Whether ``path`` holds the file a run recorded: size and modification time (cheap),
    or the whole sha256 when ``full``, when the time differs, or when none was recorded."""
    if os.path.getsize(path) != info["bytes"]:
        return False
    if not full and info.get("mtime_ns") == os.stat(path).st_mtime_ns:
        return True
    return sha256(path) == info["sha256"]


@contextlib.contextmanager
def collect_warnings(sink: List[str], echo: Optional[Callable[[str], None]] = None):
    """Gather the warnings raised inside (loading reports duplicates this way)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        sink.append(str(w.message))
        if echo:
            echo(f"warning: {w.message}")


RUN_FILES = (REPORT, MAPPING, MULTI, "cache")  # what a run directory holds
# what a run's cache/ holds (mapalign.cache), and those files' temporaries (export.atomic_file)
_CACHE_FILE = re.compile(r"(index\.json|(source|target)\.(npy|words)|penalty\.[^/]+\.npy)")


def _cache_own(name: str) -> bool:
    if name.startswith(".") and name.endswith(".tmp") and ".~" in name:
        name = name[1:name.index(".~")]
    return bool(_CACHE_FILE.fullmatch(name))


RUN_KEYS = ("mapping", "settings", "inputs")  # a JSON file with none of them is not a run's


def _is_run_report(path) -> bool:
    """Whether ``path`` is a run's report, before a run is written over it: stricter than
    :func:`read_report` (which names the missing field of a report holding any of
    :data:`RUN_KEYS`), so that a file that is only partly like one is the user's, listed."""
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and "mapping" in report and "settings" in report


def clear_cache(run_dir) -> None:
    """Remove a run's cache (an earlier fit's) from ``run_dir``: its own files only; anything
    else the user keeps in ``cache/`` stays."""
    folder = os.path.join(run_dir, "cache")
    if not os.path.isdir(folder) or os.path.islink(folder):
        return
    for name in os.listdir(folder):
        if _cache_own(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))
    with contextlib.suppress(OSError):
        os.rmdir(folder)  # only if nothing else is in it


def _foreign(run_dir) -> list:
    """The entries of ``run_dir`` that a run did not write (``cache/NAME`` for those in its
    cache folder; ``report.json`` where it is not a run's report)."""
    other = []
    for n in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, n)
        if n == "cache" and os.path.isdir(path) and not os.path.islink(path):
            other += [f"cache/{c}" for c in sorted(os.listdir(path)) if not _cache_own(c)]
        elif n == REPORT and not _is_run_report(path):
            other.append(n)
        elif n not in RUN_FILES and not n.startswith(".mapalign-") \
                and not n.startswith(f".{MAPPING}.") and not n.startswith(f".{MULTI}.") \
                and not n.startswith(f".{REPORT}."):
            other.append(n)
    return other


def check_run_dir(run_dir, overwrite: bool, keyword: str = "force") -> str:
    """Before a run is written into ``run_dir`` (created if need be): a run already there, or
    a folder that holds anything else than a run's files, is an error unless ``overwrite``
    (``keyword`` is what the caller calls it). Returns the report's path."""
    check_output_dir(run_dir)
    report_path = os.path.join(run_dir, REPORT)
    if overwrite or not os.path.isdir(run_dir):
        return report_path
    other = _foreign(run_dir)
    if os.path.exists(report_path) and REPORT not in other:
        raise OutputExistsError(f"{run_dir} already holds a run ({option(keyword)} to "
                                "overwrite it; other files there are kept)")
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5:,} more" if len(other) > 5 else "")
        replaced = f" (its {REPORT} would be replaced)" if REPORT in other else \
            " (they are kept)"
        raise OutputExistsError(f"{run_dir} is not a run and is not empty ({len(other):,} "
                                f"entries: {shown}): write the run into a new folder, or "
                                f"{option(keyword)} to write it there among them{replaced}")
    return report_path


def _stamp(path):
    """What tells a file from its replacement (None: no file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class NewRun:
    """A run directory being written by this process (see :func:`new_run`)."""

    def __init__(self, run_dir, report_path):
        self.run_dir, self.report_path = run_dir, report_path
        self._before = _stamp(report_path)

    def check_unchanged(self):
        """Before the run is written: a run that appeared (or was replaced) since the start,
        by a writer that ignores the lock, is kept, never replaced unasked."""
        if _stamp(self.report_path) != self._before:
            raise OutputExistsError(f"{self.run_dir}: another run was written there while this "
                                    "one was computed; it is kept: write this one elsewhere")


@contextlib.contextmanager
def new_run(run_dir, overwrite: bool, keyword: str = "force", command: str = "fit"):
    """Hold ``run_dir`` (created if need be) for a run about to be written there: its lock is
    taken at once or refused (:class:`mapalign.lock.RunLockedError`, naming the process that
    holds it: another fit, even with ``overwrite``), then :func:`check_run_dir`. Yields a
    :class:`NewRun`; a folder this created stays only if something was written into it."""
    check_output_dir(run_dir)
    created = not os.path.isdir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    try:
        lock.acquire(run_dir, command)
        try:
            yield NewRun(run_dir, check_run_dir(run_dir, overwrite, keyword))
        finally:
            lock.release(run_dir)
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(run_dir)  # only if empty: the fit failed before writing


def write_run(run_dir, arrays: dict, report: dict, multi: bool = False, overwrite: bool = True,
              **mapping_info):
    """Write a run's ``arrays`` (``mapping.npz``, or ``multi.npz`` for a multilingual run) and
    then ``report.json``, each atomically, holding the run's lock (refused at once when another
    process holds it); the report records the arrays' checksum (and ``mapping_info``) under
    ``mapping``."""
    name = MULTI if multi else MAPPING
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    os.makedirs(run_dir, exist_ok=True)
    with lock.locked(run_dir, "save"):
        with atomic_file(os.path.join(run_dir, name), "wb", overwrite) as f:
            f.write(data)
        report["mapping"] = {"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                             **mapping_info}
        write_json(os.path.join(run_dir, REPORT), report, overwrite=True)


def _rows_hint(path, max_vocab):
    """Rows a progress bar should expect: the header's count, capped by max_vocab."""
    from .loading import header_rows

    n = header_rows(path)  # None for a pipe: it is not opened twice
    return min(n, max_vocab or n) if n else max_vocab


def _is_multi(report: dict, run_dir) -> bool:
    return "multi" in report or os.path.exists(os.path.join(run_dir, MULTI))


def read_report(run_dir):
    """The report of the run in ``run_dir``, checked against what a run of its kind writes
    (:func:`mapalign.schema.check_report`); a missing file, one that is not UTF-8 JSON, or
    some other JSON file is an error naming it."""
    report_path = os.path.join(run_dir, REPORT)
    if not os.path.exists(report_path):
        raise FileNotFoundError(f"{run_dir}: no {REPORT} (not a run directory, or its fit "
                                "did not finish)")
    with open(report_path, "rb") as f:
        raw = f.read()
    try:
        report = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(report_path, None, f"not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise FormatError(report_path, e.lineno, f"not valid JSON: {e.msg}") from None
    missing = [k for k in RUN_KEYS if not isinstance(report, dict) or k not in report]
    if len(missing) == len(RUN_KEYS):  # some other JSON file; a run report in part: said by
        # check_report
        raise FormatError(report_path, None, "not a mapalign run report (no "
                          f"{', '.join(repr(k) for k in missing)} entry)")
    return check_report(report, report_path, _is_multi(report, run_dir))


def read_run(run_dir, multi: bool = False):
    """``(arrays, report)`` of a two-language run (or, ``multi``, of a multilingual one);
    checks that the report is a run report (:func:`read_report`), that the run is of the kind
    asked for (naming the commands for the other kind) and that the arrays are the ones the
    report recorded."""
    report = read_report(run_dir)
    is_multi = _is_multi(report, run_dir)
    if is_multi and not multi:
        raise NotTwoLanguageRun(f"{run_dir} is a multilingual run (fit-multi): use " + (
            "evaluate-multi, export-multi, or translate "
            f"{option('from_lang', 'LANG')} {option('to_lang', 'LANG')}" if in_cli() else
            "mapalign.load() (a MultiAligner), or evaluate_multi_run, export_multi_run or "
            "translate_multi_run"))
    if multi and not is_multi:
        raise ValueError(f"{run_dir} is a two-language run (fit): use " + (
            f"evaluate, export or translate (without {option('from_lang')}/"
            f"{option('to_lang')})" if in_cli() else
            "mapalign.load(), or evaluate_run, export_run or translate_run"))
    path = os.path.join(run_dir, MULTI if multi else MAPPING)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the run's mapping is missing: fit again")
    if sha256(path) != report["mapping"].get("sha256"):
        raise ValueError(f"{path} does not match {report.path} (an interrupted overwrite?): "
                         "fit again")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, report


def checked_input(info: dict, what: str, moved=None, full: bool = False, hint: str = "") -> str:
    """The path of a run's input (or of ``moved``, where it went), after checking that it is the
    file the run recorded (:func:`_same_file`; always by whole checksum for a moved file)."""
    path = os.fspath(moved) if moved is not None else info["path"]
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the run's {what} vectors are gone{hint}")
    check_input(path)  # a pipe or a device given with --src/--tgt: said so, never opened
    if not _same_file(path, info, full=full or moved is not None):
        reason = "is not the file the run was fitted on" if moved is not None else \
            "changed since the run was fitted"
        raise ValueError(f"{path} {reason} (checksum differs)")
    return path


def _hint(side):
    keyword = {"source": "src", "target": "tgt"}[side]
    return f" (give their new place with {option(keyword, 'PATH', python=keyword + '=PATH')})"


def check_inputs(report, src=None, tgt=None, verify=False):
    """Check, without reading them as vectors, that files named with ``--src/--tgt`` (always)
    or the recorded inputs (with ``verify``) are the run's: by whole sha256."""
    for side, moved in (("source", src), ("target", tgt)):
        if moved is not None or verify:
            checked_input(run_input(report, side), side, moved, True, _hint(side))


def load_run_inputs(report, verify=False, progress_factory=None, echo=None, src=None,
                    tgt=None, checked=False):
    """Read the run's source and target vectors again, as ``fit`` read them. Each file is
    checked to be the one the run recorded: by size and modification time, or by its whole
    sha256 with ``verify`` (and whenever the time differs). ``src``/``tgt`` name the files
    where they have moved; they are accepted when their checksum is the recorded one.
    ``checked``: :func:`check_inputs` has just done that (no second checksum)."""
    progress_factory = progress_factory or (lambda label, n: contextlib.nullcontext(None))
    s = report["settings"]
    out, warned = [], []
    for side, moved in (("source", src), ("target", tgt)):
        info = run_input(report, side)
        if checked and (moved is not None or verify):
            path = os.fspath(moved) if moved is not None else info["path"]
        else:
            path = checked_input(info, side, moved, verify, _hint(side))
        with collect_warnings(warned), progress_factory(f"loading {side}",
                                                        _rows_hint(path, s["max_vocab"])) as bar:
            out.append(load_embeddings(path, s["max_vocab"], s["format"], s["encoding_errors"],
                                       bar))
    return out[0], out[1]


# ---------------------------------------------------------------- writes that may fail
# a run directory that cannot be written: the command gives its result all the same
UNWRITABLE = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}
_warned_unwritable = set()


def unwritable(e: BaseException) -> bool:
    """Whether ``e`` says that a folder cannot be written (full, read-only, not ours)."""
    return isinstance(e, OSError) and e.errno in UNWRITABLE


def warn_unwritable(run_dir, e: OSError) -> None:
    """Warn, once per run directory and process, that ``run_dir`` could not be written."""
    run_dir = os.path.abspath(os.fspath(run_dir))
    if run_dir in _warned_unwritable:
        return
    _warned_unwritable.add(run_dir)
    reason = os.strerror(e.errno) if e.errno else str(e)
    warnings.warn(f"{run_dir} cannot be written ({reason[:1].lower()}{reason[1:]}): results "
                  "are computed in memory, and the run's cache and report.json are not "
                  "updated", lock.MapalignWarning, stacklevel=3)


REPORT_WAIT_S = 30.0  # how long an appended entry waits for another command's short write


def update_report(run_dir, key, entry, mapping_sha256: Optional[str] = None) -> bool:
    """Append ``entry`` to the list ``key`` of the run's report: read, append and replace
    (atomically) holding the run's lock, so that commands running at once lose no entry.
    Returns whether it was recorded; when not, a warning says why: the run cannot be written
    (:func:`warn_unwritable`), a fit is rewriting it, or (``mapping_sha256``: the mapping the
    entry is about) it was refitted meanwhile."""
    path = os.path.join(run_dir, REPORT)
    try:
        with lock.locked(run_dir, f"append to {key}", wait=REPORT_WAIT_S):
            with open(path, encoding="utf-8") as f:
                report = json.load(f)
            check_report(report, path, _is_multi(report, run_dir))
            if mapping_sha256 and report.get("mapping", {}).get("sha256") != mapping_sha256:
                warnings.warn(f"{path}: this result was not recorded: the run was fitted again "
                              "while it was computed", lock.MapalignWarning, stacklevel=2)
                return False
            report.setdefault(key, []).append(entry)
            write_json(path, report)
            return True
    except lock.RunLockedError as e:
        warnings.warn(f"{path}: this result was not recorded: {e}", lock.MapalignWarning,
                      stacklevel=2)
    except OSError as e:
        if not unwritable(e):
            raise
        warn_unwritable(run_dir, e)
    return False



def run_verdict(report: dict) -> dict:
    """What a fit learnt about its own run's quality, from its ``report``: ``{"failed": bool,
    "warnings": [...]}``. Failed: the unsupervised criterion did not beat random starts (a
    two-language run, or a language of a multilingual one), the semi-supervised held-out
    check translated almost none of its words, or the fit's dictionary-free check found no
    alignment. Warned about besides: that check's verdict 'poor', a convergence not tested,
    seed pairs dropped, and every warning the fit recorded. Every command that uses
    a run shows these (the command line on stderr, even with ``-q``, and in its JSON
    ``warnings``); ``--strict`` refuses a failed run."""
    from .semi_supervised import HELDOUT_WARN

    failed, out = False, []
    fit_warnings = [str(w) for w in report.get("warnings") or []]
    unsup = report.get("unsupervised") or {}
    if unsup.get("converged") is False:
        failed = True
        test = unsup.get("convergence_test") or {}
        level = "" if test.get("null_level") is None else \
            f" vs {test['null_level']:.4f} + margin {test.get('margin', 0):.2f} of random starts"
        out.append(f"the unsupervised fit DID NOT CONVERGE (mean translation cosine "
                   f"{unsup.get('criterion', float('nan')):.4f}{level}): the mapping is "
                   "probably wrong")
    elif unsup and unsup.get("converged") is None:
        out.append("the unsupervised fit's convergence was not tested (no null draw)")
    check = report.get("heldout_check")
    if isinstance(check, dict) and check.get("p@1") is not None and \
            check["p@1"] < HELDOUT_WARN:
        failed = True
        if not any(w.startswith("self-learning without") for w in fit_warnings):
            out.append(f"the semi-supervised held-out check failed: CSLS P@1 "
                       f"{check['p@1']:.1f} on {check.get('words')} held-out seed words")
    multi = report.get("multi") or {}
    checks = {"": report.get("quality")}
    checks.update({f" ({pair})": q for pair, q in (multi.get("quality") or {}).items()})
    for where, q in checks.items():
        said = q.get("verdict") if isinstance(q, dict) else None
        if not isinstance(said, str) or unsup.get("converged") is False:
            continue
        if said.startswith("no alignment"):
            failed = True
            out.append(f"the fit's dictionary-free check{where}: {said}; the mapping is "
                       "probably wrong")
        elif said.startswith("poor"):
            out.append(f"the fit's dictionary-free check{where}: {said}")
    bad = sorted(lang for lang, info in (multi.get("hub_fits") or {}).items()
                 if isinstance(info, dict) and info.get("converged") is False)
    if bad:
        failed = True
        out.append(f"the unsupervised map of {', '.join(bad)} to {multi.get('hub')} DID NOT "
                   "CONVERGE: those maps are probably wrong")
    seeds = {"": report.get("seed_dictionary")}
    seeds.update({f"{name}: ": info for name, info in
                  (multi.get("seed_dictionaries") or {}).items()})
    for name, info in seeds.items():
        if isinstance(info, dict) and info.get("pairs_oov"):
            out.append(f"{name}the fit used {info.get('pairs_used')} of {info.get('pairs')} "
                       f"seed pairs ({info['pairs_oov']} dropped: a word out of vocabulary)")
    out += [f"at fit: {w}" for w in fit_warnings]
    return {"failed": failed, "warnings": out}


def read_verdict(run_dir) -> Optional[dict]:
    """:func:`run_verdict` of the run in ``run_dir``; None where its report cannot be read (the
    command that reads the run says why)."""
    try:
        return run_verdict(read_report(run_dir))
    except (OSError, ValueError):  # FormatError is a ValueError: the command says why
        return None
