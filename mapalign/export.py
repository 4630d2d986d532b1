"""Writing results atomically: ``.vec`` text, ``.npy`` matrices, dictionaries, JSON.

Every writer writes a temporary file beside the target and renames it over the target only
when it is complete, so a crash never leaves a half-written output. ``overwrite=False``
refuses to replace an existing file.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Iterable, Sequence, Tuple

import numpy as np

_VEC_CHUNK = 4096


class OutputExistsError(FileExistsError):
    pass


def check_output_dir(path) -> str:
    """Fail early, before any expensive work, if the folder ``path`` cannot be created or
    written: a component of it is a file, or the nearest existing folder is read-only."""
    path = os.path.abspath(os.fspath(path))
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise NotADirectoryError(f"{path}: cannot write a folder there, {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: {probe} is not writable")
    return path


@contextlib.contextmanager
def atomic_set(out_dir, names, overwrite=False):
    """Write a set of files into ``out_dir`` all or nothing: the caller writes into the
    temporary folder this yields; on success every file is moved into place with interrupts
    (Ctrl-C) held back until the set is complete; on failure nothing in ``out_dir`` changes."""
    import signal
    import shutil

    out_dir = check_output_dir(out_dir)
    if not overwrite:
        for name in names:
            if os.path.exists(os.path.join(out_dir, name)):
                raise OutputExistsError(f"{os.path.join(out_dir, name)} exists "
                                        "(use --force to overwrite)")
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".mapalign-partial-", dir=out_dir)
    try:
        yield tmp
        held = []
        previous = None
        with contextlib.suppress(ValueError):  # not the main thread: nothing to hold back
            previous = signal.signal(signal.SIGINT, lambda *a: held.append(a))
        try:
            for name in names:
                os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if held:
            raise KeyboardInterrupt
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path, mode="wb", overwrite=True):
    """Open a temporary file beside ``path``; on success it replaces ``path``."""
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise OutputExistsError(f"{path} exists (use --force to overwrite)")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_vec(path, words: Sequence[str], vectors: np.ndarray, overwrite=True, precision=6,
              progress=None):
    """word2vec/fastText text format with an ``N D`` header. Rows are formatted a block at a
    time with one C-level ``%`` over the whole block (no Python loop per row)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if len(words) != n:
        raise ValueError(f"{len(words)} words for {n} vectors")
    for w in words:
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"word {w!r} cannot be written to a .vec file (empty or spaces)")
    row = "%s" + (f" %.{precision}f" * d) + "\n"
    with atomic_file(path, "wb", overwrite) as f:
        f.write(f"{n} {d}\n".encode())
        for a in range(0, n, _VEC_CHUNK):
            b = min(n, a + _VEC_CHUNK)
            cells = np.empty((b - a, d + 1), dtype=object)
            cells[:, 0] = words[a:b]
            cells[:, 1:] = vectors[a:b].astype(np.float64)
            f.write(((row * (b - a)) % tuple(cells.ravel().tolist())).encode("utf-8"))
            if progress:
                progress(b - a)


def write_npy(path, array, overwrite=True):
    with atomic_file(path, "wb", overwrite) as f:
        np.save(f, np.asarray(array))


def write_dictionary(path, entries: Iterable[Tuple[str, str, float]], overwrite=True):
    """``source target score`` per line."""
    with atomic_file(path, "wb", overwrite) as f:
        f.write("".join(f"{s} {t} {v:.6f}\n" for s, t, v in entries).encode("utf-8"))


def write_json(path, obj, overwrite=True):
    with atomic_file(path, "wb", overwrite) as f:
        f.write((json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")
                .encode("utf-8"))


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
