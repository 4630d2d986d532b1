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


def write_vec(path, words: Sequence[str], vectors: np.ndarray, overwrite=True, precision=6):
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
