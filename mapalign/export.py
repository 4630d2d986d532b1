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

_VEC_CHUNK = 8192


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
    """word2vec/fastText text format with an ``N D`` header, values as ``%.{precision}f``.

    Rows are formatted a block at a time by array arithmetic (:func:`format_rows`), not by a
    Python loop per value."""
    _write_rows(path, words, vectors, lambda w, v: format_rows(w, v, precision), overwrite,
                progress)


def write_word2vec_binary(path, words: Sequence[str], vectors: np.ndarray, overwrite=True,
                          progress=None):
    """word2vec binary: an ``N D`` text header, then :func:`word2vec_binary_rows`."""
    _write_rows(path, words, vectors, word2vec_binary_rows, overwrite, progress)


def _write_rows(path, words, vectors, rows, overwrite, progress):
    vectors = np.asarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if len(words) != n:
        raise ValueError(f"{len(words)} words for {n} vectors")
    for w in words:
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"word {w!r} cannot be written to a vectors file (empty or spaces)")
    with atomic_file(path, "wb", overwrite) as f:
        f.write(f"{n} {d}\n".encode())
        for a in range(0, n, _VEC_CHUNK):
            b = min(n, a + _VEC_CHUNK)
            f.write(rows(words[a:b], vectors[a:b]))
            if progress:
                progress(b - a)


_PAD = 0  # a byte that no formatted value contains; removed before writing


def _digit_table(width: int, pad_leading: bool) -> np.ndarray:
    """Row k: the ``width`` decimal digits of k (as bytes), leading zeros as padding if asked."""
    k = np.arange(10 ** width)
    out = np.empty((10 ** width, width), dtype=np.uint8)
    for j in range(width):
        place = 10 ** (width - 1 - j)
        out[:, j] = ord("0") + (k // place) % 10
        if pad_leading and j < width - 1:
            out[:, j] = np.where(k < place, _PAD, out[:, j])
    return out


_TABLE3 = _digit_table(3, False)


def format_rows(words: Sequence[str], vectors: np.ndarray, precision: int = 6) -> bytes:
    """``word v1 ... vd\n`` lines, byte for byte what ``"%.{precision}f"`` gives, built with
    numpy: values are rounded to integers of 10^-precision (exact for float32 and precision up
    to 8), their digits looked up three at a time into fixed-width cells, and the padding
    removed."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if precision > 8 or not np.isfinite(vectors).all() or vectors.size == 0:
        row = "%s" + (f" %.{precision}f" * vectors.shape[1]) + "\n"
        return "".join(row % ((w,) + tuple(v)) for w, v in
                       zip(words, vectors.astype(np.float64).tolist())).encode("utf-8")
    n, d = vectors.shape
    x = vectors.astype(np.float64)
    scaled = np.abs(np.rint(x * 10.0 ** precision)).astype(np.int64)  # exact: see above
    ints, fracs = np.divmod(scaled, 10 ** precision)
    digits = max(1, len(str(int(ints.max()))))
    width = 2 + digits + 1 + precision  # ' ', sign, integer digits, '.', fraction
    cells = np.empty((n, d, width), dtype=np.uint8)
    cells[..., 0] = ord(" ")
    cells[..., 1] = np.where(np.signbit(x), ord("-"), _PAD)
    cells[..., 2:2 + digits] = _digit_table(digits, True)[ints] if digits <= 3 else \
        _digit_table_big(ints, digits)
    cells[..., 2 + digits] = ord(".")
    pos, left = 3 + digits, precision
    while left > 0:  # the fraction, three digits at a time, most significant first
        take = min(3, left)
        chunk = (fracs // 10 ** (left - take)) % 10 ** take
        cells[..., pos:pos + take] = _TABLE3[chunk][..., 3 - take:]
        pos, left = pos + take, left - take
    flat = cells.reshape(n, d * width)
    keep = flat != _PAD
    raw = flat[keep].tobytes()
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    starts = [0] + ends[:-1]
    return b"".join(w.encode("utf-8") + raw[a:b] + b"\n" for w, a, b in zip(words, starts, ends))


def _digit_table_big(ints, digits):
    out = np.empty(ints.shape + (digits,), dtype=np.uint8)
    for j in range(digits):
        place = 10 ** (digits - 1 - j)
        out[..., j] = np.where((ints < place) & (j < digits - 1), _PAD,
                               ord("0") + (ints // place) % 10)
    return out


def word2vec_binary_rows(words: Sequence[str], vectors: np.ndarray) -> bytes:
    """Rows of the word2vec binary format: ``word``, a space, D little-endian float32, a
    newline (as the original word2vec tool writes them)."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    return b"".join(w.encode("utf-8") + b" " + v.tobytes() + b"\n"
                    for w, v in zip(words, vectors))


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
