"""Writing results atomically: ``.vec`` text, ``.npy`` matrices, dictionaries, JSON.

Every writer writes a temporary file beside the target and renames it over the target only
when it is complete, so a crash never leaves a half-written output. ``overwrite=False``
refuses to replace an existing file.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence, Tuple

import numpy as np

from .errors import option
from .lock import sweep_once, temp_tag

_VEC_CHUNK = 8192
_SPACE = re.compile(r"\s")


class OutputExistsError(FileExistsError):
    pass


def check_output_dir(path, create: bool = True) -> str:
    """Fail early, before any expensive work, if the folder ``path`` cannot be created or
    written: a component of it is a file, a symbolic-link loop or a link to a missing place,
    the nearest existing folder is read-only, or (with ``create=False``, for a single output
    file) it does not exist. ``os.path.exists`` is False for a link loop: the walk up goes by
    ``lexists`` and every existing entry is resolved with ``os.stat``."""
    path = os.path.abspath(os.fspath(path))
    probe = path
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    try:
        st = os.stat(probe)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: cannot write a folder there, {probe} is a symbolic "
                                "link to a missing place") from None
    except OSError as e:  # ELOOP: a symbolic-link loop; ENOTDIR; EACCES
        raise OSError(e.errno, f"{path}: cannot write a folder there, {probe}: "
                               f"{e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{path}: cannot write a folder there, {probe} is a file")
    if not create and probe != path:
        raise FileNotFoundError(f"{path}: no such folder (create it first)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: {probe} is not writable")
    return path


def check_output_file(path, create: bool = False) -> str:
    """:func:`check_output_dir` for a single output file: its folder must exist (or, with
    ``create``, be creatable) and be writable, and ``path`` itself must not be a folder."""
    path = os.path.abspath(os.fspath(path))
    check_output_dir(os.path.dirname(path), create=create)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder: give a file name")
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
                                        f"(use {option('force')} to overwrite)")
    os.makedirs(out_dir, exist_ok=True)
    sweep_once(out_dir)
    tmp = tempfile.mkdtemp(prefix=f".mapalign-partial-{temp_tag()}-", dir=out_dir)
    try:
        try:
            yield tmp
        except WriteError as e:  # name the file where it was going, not the temporary one
            if e.filename and os.path.dirname(e.filename) == tmp:
                e.filename = os.path.join(out_dir, os.path.basename(e.filename))
            raise
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


class WriteError(OSError):
    """An output could not be written: ``FILE: no space left on device``."""

    def __str__(self):
        reason = self.strerror or "could not be written"
        return f"{self.filename}: {reason[:1].lower()}{reason[1:]}"


def _named(e: OSError, path) -> WriteError:
    if isinstance(e, WriteError):
        return e
    if e.errno is None and "requested and" in str(e):  # numpy's short write: a full disk
        return WriteError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({e})", path)
    return WriteError(e.errno, e.strerror or str(e), path)


def _write(f, data):
    """Every byte an output gets goes through here (a test stands a full disk in for it)."""
    return f.write(data)


class _Output:
    """The file :func:`atomic_file` yields: writes go through :func:`_write`, so that numpy
    (``np.save``) writes by ``write`` rather than ``tofile``, and a failure names ``path``."""

    def __init__(self, f, path):
        self._f, self.name = f, path

    def write(self, data):
        try:
            return _write(self._f, data)
        except OSError as e:
            raise _named(e, self.name) from None

    def __getattr__(self, attr):  # seek, tell, flush, fileno...
        return getattr(self._f, attr)


@contextlib.contextmanager
def atomic_file(path, mode="wb", overwrite=True):
    """Open a temporary file beside ``path``; on success it replaces ``path``. The temporary
    name carries the process id and host (:func:`mapalign.lock.temp_tag`), so that a later
    command removes it if this process dies (:func:`mapalign.lock.sweep`); an OS error names
    ``path`` (:class:`WriteError`) and leaves no partial file."""
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise OutputExistsError(f"{path} exists (use {option('force')} to overwrite)")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        sweep_once(folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.~{temp_tag()}-",
                                   suffix=".tmp", dir=folder)
    except OSError as e:
        raise _named(e, path) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield _Output(f, path)  # the caller's own errors (reading input) pass as they are
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise _named(e, path) from None
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise _named(e, path) from None
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
        if not w or _SPACE.search(w):
            raise ValueError(f"word {w!r} cannot be written to a vectors file (empty or spaces)")
    # blocks are formatted by a few threads (numpy releases the GIL) while this thread
    # writes the finished ones in order
    threads = max(1, min(4, os.cpu_count() or 1))
    with atomic_file(path, "wb", overwrite) as f, ThreadPoolExecutor(threads) as pool:
        f.write(f"{n} {d}\n".encode())
        pending = collections.deque()

        def write_oldest():
            count, block = pending.popleft()
            f.write(block.result())
            if progress:
                progress(count)

        for a in range(0, n, _VEC_CHUNK):
            b = min(n, a + _VEC_CHUNK)
            pending.append((b - a, pool.submit(rows, words[a:b], vectors[a:b])))
            if len(pending) > threads:
                write_oldest()
        while pending:
            write_oldest()


_PAD = 0  # a byte that no formatted value contains; removed before writing


def _ascii3() -> np.ndarray:
    """``k`` -> its three decimal digits as ASCII bytes packed little-endian in a uint64."""
    k = np.arange(1000, dtype=np.uint64)
    return ((48 + k // 100) | ((48 + k // 10 % 10) << np.uint64(8))
            | ((48 + k % 10) << np.uint64(16))).astype(np.uint64)


_ASCII3 = _ascii3()
_MAX_FAST = 10 ** 7  # values below this (in absolute value) take the fast path
# rows formatted at once: the temporaries of 1,024 x 300 values (a few MB each) are reused by
# the allocator, where those of 8,192 rows were fresh pages every block (251 against 155 MB/s)
_FORMAT_ROWS = 1024
_U = np.uint64


def format_rows(words: Sequence[str], vectors: np.ndarray, precision: int = 6) -> bytes:
    """``word v1 ... vd\n`` lines, byte for byte what ``"%.{precision}f"`` gives.

    With ``precision=6`` and values below 10^7, each value is assembled by integer arithmetic
    into a fixed-width cell padded with zero bytes: a head (``' '``, the sign and all integer
    digits but the last, right-aligned, 2, 4 or 8 bytes as the largest value needs) and an
    8-byte tail (the last integer digit, ``'.'`` and six decimals). The words sit in the
    same buffer, and one ``bytes.translate`` drops the padding of both. Values are
    rounded as integers of 10^-6 (``rint`` of ``x * 10^6``: exact in float64 for any float32
    ``x``, ties to even as C's printf). Other precisions, non-finite or larger values use
    Python's formatting."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) > _FORMAT_ROWS:  # small blocks: temporaries reused, not page-faulted in
        return b"".join(format_rows(words[a:a + _FORMAT_ROWS], vectors[a:a + _FORMAT_ROWS],
                                    precision) for a in range(0, len(vectors), _FORMAT_ROWS))
    if precision != 6 or vectors.size == 0 or not np.isfinite(vectors).all() or \
            float(np.abs(vectors).max()) >= _MAX_FAST - 1:
        row = "%s" + (f" %.{precision}f" * vectors.shape[1]) + "\n"
        return "".join(row % ((w,) + tuple(v)) for w, v in
                       zip(words, vectors.astype(np.float64).tolist())).encode("utf-8")
    n, d = vectors.shape
    scaled = np.rint(np.abs(vectors.astype(np.float64)) * 1e6).astype(np.int64)
    ints = scaled // 1_000_000
    fracs = scaled - ints * 1_000_000
    hi = fracs // 1000
    upper = ints // 10  # the integer digits before the last one
    tail = ((48 + ints - upper * 10).astype(np.uint64) | _U(ord(".") << 8)
            | (_ASCII3[hi] << _U(16)) | (_ASCII3[fracs - hi * 1000] << _U(40)))
    n_upper = len(str(int(upper.max()))) if upper.any() else 0
    head_bytes = 2 if n_upper == 0 else 4 if n_upper <= 2 else 8
    top = 8 * (head_bytes - 1)
    sign = np.signbit(vectors).view(np.uint8) * _U(ord("-"))  # or _PAD, which is 0
    head, extra = _U(0), _U(0)  # upper digits, right-aligned, and how many each value has
    for k in range(n_upper):
        present = upper >= 10 ** k
        digit = (48 + upper // 10 ** k % 10).astype(np.uint64) << _U(top - 8 * k)
        head = head | np.where(present, digit, _U(0))
        extra = extra + present.astype(np.uint64)
    head = head | (sign << (_U(top) - _U(8) * extra)) | \
        (_U(ord(" ")) << (_U(top - 8) - _U(8) * extra))
    cell = np.dtype({"names": ["head", "tail"], "formats": [f"<u{head_bytes}", "<u8"],
                     "offsets": [0, head_bytes], "itemsize": head_bytes + 8})
    cells = np.empty((n, d), dtype=cell)
    cells["head"] = head
    cells["tail"] = tail
    # the words go into the same buffer, left-aligned in a field as wide as the longest one
    # and padded with the same zero bytes, so one translate gives the finished lines; a word
    # with a NUL byte would lose it, so then the field is empty and the words are joined after
    encoded = [w.encode("utf-8") for w in words]
    nul = any(_PAD in w for w in encoded)
    width = 0 if nul else max(map(len, encoded))
    buf = np.empty((n, width + d * cell.itemsize + 1), dtype=np.uint8)
    if width:
        buf[:, :width] = np.array(encoded, dtype=f"S{width}").view(np.uint8).reshape(n, width)
    buf[:, width:-1] = cells.view(np.uint8).reshape(n, -1)
    buf[:, -1] = ord("\n")
    lines = buf.tobytes().translate(None, bytes([_PAD]))
    if not nul:
        return lines
    return b"".join([w + r + b"\n" for w, r in zip(encoded, lines.split(b"\n"))])


def word2vec_binary_rows(words: Sequence[str], vectors: np.ndarray) -> bytes:
    """Rows of the word2vec binary format: ``word``, a space, D little-endian float32, a
    newline (as the original word2vec tool writes them)."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    return b"".join(w.encode("utf-8") + b" " + v.tobytes() + b"\n"
                    for w, v in zip(words, vectors))


class _VectorRows:
    """Blocks of rows appended to an open vectors file; counts what it wrote."""

    def __init__(self, f, out_format):
        self._f, self._text = f, out_format == "text"
        self.rows, self.dim = 0, None

    def write(self, words: Sequence[str], vectors: np.ndarray):
        self._f.write(format_rows(words, vectors) if self._text
                      else word2vec_binary_rows(words, vectors))
        self.rows += len(words)
        self.dim = vectors.shape[1]


_HEADER_WIDTH = 40  # "N D" padded with spaces: reserved first, filled in once N is known


@contextlib.contextmanager
def streamed_vectors(path, out_format: str = "text", overwrite: bool = True):
    """A vectors file (text ``.vec`` or word2vec binary) written a block at a time, without
    knowing the row count in advance, atomically: ``with streamed_vectors(p) as out:
    out.write(words, vectors)``."""
    if out_format not in ("text", "word2vec-binary"):
        raise ValueError("format must be 'text' or 'word2vec-binary'")
    with atomic_file(path, "wb", overwrite) as f:
        f.write(b" " * (_HEADER_WIDTH - 1) + b"\n")
        out = _VectorRows(f, out_format)
        yield out
        f.seek(0)
        f.write(f"{out.rows} {out.dim}".ljust(_HEADER_WIDTH - 1).encode() + b"\n")


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
