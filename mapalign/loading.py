"""Loading word vectors (word2vec/fastText text and binary, fastText ``.bin``, gzip) and
bilingual dictionaries, with errors that name the file and the line."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import itertools
import os
import stat
import struct
import warnings
import zlib
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .backend import get_array_module
from .errors import InputMismatchError, SwappedError, option

FORMATS = ("auto", "text", "word2vec-binary", "fasttext-bin")
ENCODING_ERRORS = ("strict", "skip", "replace")
_FASTTEXT_MAGIC = 793712314
_CHUNK_ROWS = 8192


class FormatError(ValueError):
    """Malformed input; ``str()`` starts with ``path:line:`` like a compiler message."""

    def __init__(self, path, line, message):
        self.path, self.line = str(path), line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def as_rows(X, what: str, dim: Optional[int] = None, xp=np):
    """``X`` (an array or nested lists of numbers) as a float32 matrix of ``xp``, one vector a
    row (with ``dim`` columns when given); anything else is a ``ValueError`` naming ``what``."""
    try:
        X = xp.asarray(X, dtype=xp.float32)
    except (TypeError, ValueError) as e:
        if hasattr(X, "shape"):  # an array already: not a question of its contents
            raise
        why = "rows of different lengths" if "inhomogeneous" in str(e) else str(e)
        raise ValueError(f"{what}: expected a matrix of numbers (one vector a row), got a "
                         f"{type(X).__name__} that is not one: {why}") from None
    if X.ndim != 2:
        raise ValueError(f"{what}: expected a matrix (one vector a row), got shape "
                         f"{tuple(X.shape)}" + (" (one vector v: [v])" if X.ndim == 1 else ""))
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{what}: vectors of {X.shape[1]} dimensions, the model maps {dim}")
    return X


class Embeddings:
    """Words, a word->row index and a float32 matrix (one row per word, in file order).

    ``oov`` is an optional callable giving a vector for a word outside ``words``
    (fastText ``.bin`` models build one from subwords).
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray, path: Optional[str] = None,
                 oov: Optional[Callable[[str], np.ndarray]] = None):
        vectors = as_rows(vectors, "vectors")
        if vectors.shape[0] != len(words):
            raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
        self.words = list(words)
        self.vectors = vectors
        self.index: Dict[str, int] = {w: i for i, w in enumerate(self.words)}
        self.path = path
        self.oov = oov

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def vector(self, word: str) -> np.ndarray:
        """The row of ``word``; a subword vector for an out-of-vocabulary word where the
        model has one; KeyError otherwise."""
        i = self.index.get(word)
        if i is not None:
            return self.vectors[i]
        if self.oov is not None:
            return np.asarray(self.oov(word), dtype=np.float32)
        raise KeyError(word)

    def __repr__(self):
        return f"Embeddings({len(self)} words x {self.dim} dims, path={self.path!r})"


# Limits that bound the memory of every reader, whatever its input (a line without a newline,
# /dev/zero, a 5 MB "word"). A reader never holds more than one line (or, in word2vec binary,
# one word) beyond these before it stops with ``FILE:LINE: line longer than N bytes``.
WORD_LIMIT = 1024  # bytes of a word: 10x word2vec's own (100), far above any real token
MAX_DIM = 65536  # dimensions of a vectors file (real ones: 100 to 4,096)
LINE_BASE = 64 * 1024  # bytes of a vectors line besides its values (the word, spacing)
BYTES_PER_VALUE = 32  # bytes of one text value and its space: '-1.2345678901234567e-308 ' is 25
DICT_LINE_LIMIT = 64 * 1024  # bytes of a dictionary line (two words and a score)
_BUFFER = 1 << 20


def vectors_line_limit(dim: Optional[int] = None) -> int:
    """The longest vectors line accepted, in bytes: 64 KiB + 32 bytes a value (``dim``, or
    :data:`MAX_DIM` while the dimension is not known yet)."""
    return LINE_BASE + BYTES_PER_VALUE * (dim or MAX_DIM)


def _too_long(path, lineno, limit, what=""):
    return FormatError(path, lineno, f"line longer than {limit:,} bytes{what} (a file "
                                     "without newlines, or not a text file?)")


def read_line(f, limit: int, path, lineno) -> bytes:
    """The next line of the binary stream ``f`` (b"" at its end), read in bounded pieces:
    one longer than ``limit`` bytes is a :class:`FormatError` before it is held. Every text
    reader reads its lines through this (or its inlined twin in :func:`_read_text`)."""
    line = f.readline(limit + 1)
    if len(line) > limit and not line.endswith(b"\n"):
        raise _too_long(path, lineno, limit)
    return line


def check_word(word: bytes, path, lineno):
    if len(word) > WORD_LIMIT:
        raise FormatError(path, lineno, f"word of {len(word):,} bytes (the limit is "
                                        f"{WORD_LIMIT:,}): not a word list?")


_KINDS = ((stat.S_ISFIFO, "a FIFO (a pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a folder"))


def check_input(path, stream_ok: bool = False) -> os.stat_result:
    """Refuse at once, without opening it, an input that is not a regular file: a missing
    one, a symbolic-link loop, a device (``/dev/zero``) or a folder; a FIFO (a pipe,
    ``<(zcat ...)``) too unless ``stream_ok`` (a reader that reads its input once: a
    dictionary, ``apply``). Vectors are refused as streams because a run re-reads them
    later (evaluate, export) and checks them by checksum."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise FileNotFoundError(f"{path}: a symbolic link to a missing file") from None
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as e:  # a link loop, a component that is a file, no permission
        raise OSError(e.errno, f"{path}: {e.strerror}") from None
    if stat.S_ISREG(st.st_mode) or (stream_ok and stat.S_ISFIFO(st.st_mode)):
        return st
    kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
    if stat.S_ISFIFO(st.st_mode):
        raise ValueError(f"{path} is {kind}: mapalign re-reads its vectors inputs later "
                         "(evaluate, export check them by checksum); save it to a file first")
    raise ValueError(f"{path} is {kind}, not a file{' or a pipe' if stream_ok else ''}: "
                     "save the data to a file first")


class _Replay(io.RawIOBase):
    """The bytes of ``inner`` read once, keeping the first ones read until :meth:`rewind`
    so that a look at a stream's head (gzip magic, format) does not need a second open: a
    pipe can be read only once. Optionally hashes every byte it reads from ``inner``."""

    def __init__(self, inner, digest=None, recording=True):
        self.inner, self.digest, self.nbytes = inner, digest, 0
        self.record, self.pos, self.recording = bytearray(), 0, recording

    def readable(self):
        return True

    def close(self):  # the buffered readers put over it come and go; _Input closes the file
        pass

    def readinto(self, b):
        if self.pos < len(self.record):
            n = min(len(b), len(self.record) - self.pos)
            b[:n] = self.record[self.pos:self.pos + n]
            self.pos += n
            if not self.recording and self.pos == len(self.record):
                self.record, self.pos = bytearray(), 0
            return n
        n = self.inner.readinto(b)
        if n:
            if self.digest is not None:
                self.digest.update(memoryview(b)[:n])
                self.nbytes += n
            if self.recording:
                self.record += memoryview(b)[:n]
                self.pos = len(self.record)
        return n

    def rewind(self, again: bool = False):
        """Read again from the start; ``again``: keep recording for one more rewind."""
        self.pos, self.recording = 0, again


class _Input:
    """One opened input, read once: ``f`` is a buffered binary stream of its (gunzipped)
    bytes; :meth:`rewind` goes back to the start after a look at the head."""

    def __init__(self, path, stream_ok: bool = False, digest: bool = False):
        self.path = os.fspath(path)
        st = check_input(self.path, stream_ok)
        self.regular = stat.S_ISREG(st.st_mode)
        self._file = open(self.path, "rb", buffering=0)
        try:
            self._raw = _Replay(self._file, hashlib.sha256() if digest else None)
            head = io.BufferedReader(self._raw, 4).read(2)
            if not head:
                raise FormatError(self.path, None, "empty file" if self.regular else
                                  "empty stream (nothing was written to it)")
            self._raw.rewind()
            self.gzip = head == b"\x1f\x8b"
            inner = io.BufferedReader(self._raw, _BUFFER)
            self._gz = gzip.GzipFile(fileobj=inner, mode="rb") if self.gzip else None
            self._top = _Replay(self._gz or inner, recording=False)
            self.f = io.BufferedReader(self._top, _BUFFER)
        except BaseException:
            self._file.close()
            raise

    def look(self):
        """Keep what is read from now (the start) for :meth:`rewind`."""
        self._top.recording = True

    def rewind(self, again: bool = False):
        self._top.rewind(again)
        self.f = io.BufferedReader(self._top, _BUFFER)

    def digest(self) -> dict:
        """Size and sha256 of the file's bytes (all of them: the rest is read first)."""
        while self._raw.readinto(bytearray(_BUFFER)):
            pass
        return {"bytes": self._raw.nbytes, "sha256": self._raw.digest.hexdigest()}

    def close(self):
        if self._gz is not None:
            self._gz.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def header_rows(path) -> Optional[int]:
    """The row count of a vectors file's ``N D`` header, if it is a regular file that has
    one (a progress bar's length; a stream is not opened twice for it)."""
    with contextlib.suppress(Exception), _Input(path) as inp:
        header = _parse_header(_strip_bom(read_line(inp.f, LINE_BASE, path, 1)))
        return header[0] if header else None
    return None


def _parse_header(line: bytes):
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _looks_like_text(region: bytes) -> bool:
    """Whether the bytes after a row's word read as text numbers (printable ASCII with a
    digit). word2vec binary floats almost never do: most of their bytes are outside ASCII."""
    return bool(region) and all(32 <= b < 127 or b in (9, 13) for b in region) and \
        any(48 <= b < 58 for b in region)


def detect_format(path) -> str:
    """``fasttext-bin``, ``word2vec-binary`` or ``text``, from the file's first bytes.

    A file with an ``N D`` header is word2vec binary only when its first row's values are not
    text; an odd text row (bytes that are not UTF-8 in the word, a dimension that disagrees
    with the header, a non-numeric value) stays text, so that the text reader can say what is
    wrong and where."""
    path = os.fspath(path)
    with _Input(path) as inp, _gzip_errors(path):
        return _detect(inp)


def _detect(inp: "_Input") -> str:
    """:func:`detect_format` of an opened input, left at its start (read once)."""
    inp.look()
    head = inp.f.read(4)
    if len(head) == 4 and struct.unpack("<i", head)[0] == _FASTTEXT_MAGIC:
        fmt = "fasttext-bin"
    else:
        inp.rewind(again=True)
        fmt = _text_or_binary(inp.f, inp.path)
    inp.rewind()
    return fmt


def _text_or_binary(f, path) -> str:
    header = _parse_header(_strip_bom(read_line(f, vectors_line_limit(), path, 1)))
    if header is None:
        return "text"
    line = f.readline(BYTES_PER_VALUE * min(header[1], MAX_DIM) + 4096)
    if not line:
        return "text"
    _, _, values = line.rstrip(b"\r\n").partition(b" ")
    return "text" if _looks_like_text(values) else "word2vec-binary"


def _strip_bom(line: bytes) -> bytes:
    return line[3:] if line.startswith(b"\xef\xbb\xbf") else line


def load_embeddings(path, max_vocab: Optional[int] = None, fmt: str = "auto",
                    encoding_errors: str = "strict",
                    progress: Optional[Callable[[int], None]] = None) -> Embeddings:
    """Read word vectors from ``path``.

    ``max_vocab`` keeps the first N words (files are sorted by frequency) and stops reading
    there. ``encoding_errors``: ``strict`` raises on bytes that are not UTF-8, ``skip``
    drops such words, ``replace`` keeps them with U+FFFD; the last two warn with a count.
    ``progress`` is called with the number of rows read since its last call.
    """
    path = os.fspath(path)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
    if encoding_errors not in ENCODING_ERRORS:
        raise ValueError(f"encoding_errors must be one of {ENCODING_ERRORS}")
    if max_vocab is not None and max_vocab < 1:
        raise ValueError("max_vocab must be a positive number")
    with _Input(path) as inp, _gzip_errors(path):  # a regular file: a run re-reads it later
        if fmt == "auto":
            fmt = _detect(inp)
        if fmt == "fasttext-bin":
            return _load_fasttext_bin(inp, max_vocab, encoding_errors)
        reader = _read_text if fmt == "text" else _read_word2vec_binary
        words, blocks, stats = reader(inp, max_vocab, encoding_errors,
                                      progress or (lambda n: None))
    if not words:
        raise FormatError(path, None, "no word vectors in file")
    vectors = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    if stats["bad_encoding"]:
        action = "skipped" if encoding_errors == "skip" else "kept with U+FFFD"
        warnings.warn(f"{path}: {stats['bad_encoding']} lines with bytes that are not UTF-8 were "
                      f"{action} (first at line {stats['first_bad_encoding']})", stacklevel=2)
    if stats["duplicates"]:
        warnings.warn(f"{path}: {stats['duplicates']} duplicate words; the first vector of each "
                      f"was kept (first duplicate {stats['first_duplicate']!r} at line "
                      f"{stats['first_duplicate_line']})", stacklevel=2)
    zero = int(np.count_nonzero(~vectors.any(axis=1)))
    if zero:
        first = words[int(np.flatnonzero(~vectors.any(axis=1))[0])]
        warnings.warn(f"{path}: {zero} all-zero vectors (first {first!r}); they have no "
                      "direction and are never retrieved as translations", stacklevel=2)
    return Embeddings(words, vectors, path=path)


@contextlib.contextmanager
def _gzip_errors(path):
    """A truncated or corrupt gzip stream is a format error of the file, not a crash."""
    try:
        yield
    except EOFError:
        raise FormatError(path, None, "the gzip data ends early (truncated file)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise FormatError(path, None, f"corrupt gzip data ({e})") from None


def _is_binary(raw: bytes) -> bool:
    """Control bytes that no text encoding produces in a word: raw float data."""
    controls = sum(1 for b in raw if b < 32 and b not in (9, 10, 13))
    return b"\x00" in raw or controls > max(2, len(raw) // 10)


class _Rows:
    """Collects words and rows, dropping duplicates (first wins) and counting them."""

    def __init__(self, path):
        self.path = path
        self.words: List[str] = []
        self.seen = set()
        self.blocks: List[np.ndarray] = []
        self.stats = dict(duplicates=0, first_duplicate=None, first_duplicate_line=None,
                          bad_encoding=0, first_bad_encoding=None)

    def decode(self, raw: bytes, lineno: int, errors: str) -> Optional[str]:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if _is_binary(raw):
                raise FormatError(self.path, lineno, "binary data where a text row was "
                                                     "expected (a word2vec binary file? try "
                                                     f"{option('fmt', 'word2vec-binary')})"
                                  ) from None
            if errors == "strict":
                raise FormatError(self.path, lineno,
                                  f"bytes that are not UTF-8 at column {e.start + 1}: "
                                  f"{raw[e.start:e.end]!r} ({option('encoding_errors', 'skip')}"
                                  f" or {option('encoding_errors', 'replace')} accepts such "
                                  "files)") from None
            self.stats["bad_encoding"] += 1
            if self.stats["first_bad_encoding"] is None:
                self.stats["first_bad_encoding"] = lineno
            return None if errors == "skip" else raw.decode("utf-8", "replace")

    def add(self, words: List[str], linenos: List[int], matrix: np.ndarray):
        bad = ~np.isfinite(matrix).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FormatError(self.path, linenos[i], f"non-finite value (NaN or inf) in the "
                                                     f"vector of {words[i]!r}")
        keep = []
        for i, w in enumerate(words):
            if w in self.seen:
                if not self.stats["duplicates"]:
                    self.stats.update(first_duplicate=w, first_duplicate_line=linenos[i])
                self.stats["duplicates"] += 1
            else:
                self.seen.add(w)
                keep.append(i)
        if len(keep) < len(words):
            matrix = matrix[keep]
            words = [words[i] for i in keep]
        self.store(words, matrix)

    def store(self, words: List[str], matrix: np.ndarray):
        """Keep a checked, de-duplicated chunk (a streaming reader overrides this)."""
        self.words.extend(words)
        self.blocks.append(matrix)


def _parse_chunk(path, texts: List[str], linenos: List[int], dim: int) -> np.ndarray:
    """Parse the value fields of many lines at once; on any mismatch find the bad line."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            flat = np.fromstring(" ".join(texts), dtype=np.float32, sep=" ")
        except (DeprecationWarning, ValueError):
            flat = None
    if flat is not None and flat.size == dim * len(texts):
        return flat.reshape(len(texts), dim)
    for text, lineno in zip(texts, linenos):
        fields = text.split()
        if len(fields) != dim:
            raise FormatError(path, lineno, f"expected a word and {dim} values, found a word "
                                            f"and {len(fields)} values")
        for v in fields:
            try:
                float(v)
            except ValueError:
                raise FormatError(path, lineno, f"non-numeric value {v!r}") from None
    raise FormatError(path, linenos[0], "could not parse the values of this block")


def _check_dim(path, lineno, dim, what):
    if dim < 1 or dim > MAX_DIM:
        raise FormatError(path, lineno, f"{what} {dim:,} dimensions (mapalign reads 1 to "
                                        f"{MAX_DIM:,})")


def _read_text(inp, max_vocab, encoding_errors, progress, rows=None):
    path, f = inp.path, inp.f
    rows = rows if rows is not None else _Rows(path)
    limit = vectors_line_limit()
    first = _strip_bom(read_line(f, limit, path, 1))
    header = _parse_header(first)
    n_header, dim = header if header else (None, None)
    if header is not None:
        _check_dim(path, 1, dim, "header says")
        limit = vectors_line_limit(dim)
    pending = [] if header else [(1, first)]
    lineno = 1
    words: List[str] = []
    texts: List[str] = []
    linenos: List[int] = []
    n_rows = 0

    def lines():  # read_line, inlined: a line is never held beyond ``limit`` bytes
        yield from pending
        i, readline = 1, f.readline
        while True:
            raw = readline(limit + 1)
            if not raw:
                return
            i += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise _too_long(path, i, limit, f" ({dim:,} values)" if dim else "")
            yield i, raw

    for lineno, raw in lines():
        if max_vocab is not None and n_rows >= max_vocab:
            break
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        if len(raw) > WORD_LIMIT and raw.find(b" ", 0, WORD_LIMIT + 1) < 0:
            end = raw.find(b" ")
            check_word(raw[:end if end >= 0 else len(raw)], path, lineno)
        text = rows.decode(raw, lineno, encoding_errors)
        if text is None:  # skipped, but still a row of the file for the header's count
            n_rows += 1
            continue
        word, _, values = text.rstrip(" \t").partition(" ")
        if not word:
            raise FormatError(path, lineno, "line starts with a space: no word")
        if dim is None:
            dim = len(values.split())
            if dim < 1:
                raise FormatError(path, lineno, "no values after the word")
            _check_dim(path, lineno, dim, "a row of")
            limit = vectors_line_limit(dim)
        if n_header is not None and n_rows >= n_header:
            raise FormatError(path, lineno, f"more rows than the header's {n_header} "
                                            "(line 1)")
        words.append(word)
        texts.append(values)
        linenos.append(lineno)
        n_rows += 1
        if len(words) == _CHUNK_ROWS:
            rows.add(words, linenos, _parse_chunk(path, texts, linenos, dim))
            progress(len(words))
            words, texts, linenos = [], [], []
    if words:
        rows.add(words, linenos, _parse_chunk(path, texts, linenos, dim))
        progress(len(words))
    if n_header is not None and n_rows < n_header and (max_vocab is None or n_rows < max_vocab):
        raise FormatError(path, 1, f"header says {n_header} rows but the file has {n_rows}")
    return rows.words, rows.blocks, rows.stats


def _read_word2vec_binary(inp, max_vocab, encoding_errors, progress, rows=None):
    path, f = inp.path, inp.f
    rows = rows if rows is not None else _Rows(path)
    header = _parse_header(read_line(f, LINE_BASE, path, 1))
    if header is None:
        raise FormatError(path, 1, "word2vec binary needs a header 'N D'")
    n, dim = header
    _check_dim(path, 1, dim, "header says")
    n_read = n if max_vocab is None else min(n, max_vocab)
    width = 4 * dim
    buf = b""
    pos = 0
    words, linenos, vecs = [], [], []
    for record in range(1, n_read + 1):
        while True:  # the word runs to the next space
            end = buf.find(b" ", pos)
            if end >= 0 and len(buf) - end - 1 >= width:
                break
            if end < 0 and len(buf) - pos > WORD_LIMIT + 1:  # no space: no word
                raise FormatError(path, f"record {record}", f"word longer than "
                                  f"{WORD_LIMIT:,} bytes (no space after it)")
            more = f.read(1 << 20)
            if not more:
                raise FormatError(path, None, f"file ends inside record {record} of {n} "
                                              "(truncated word2vec binary)")
            buf = buf[pos:] + more
            pos = 0
        raw = buf[pos:end].lstrip(b"\n")
        check_word(raw, path, f"record {record}")
        pos = end + 1 + width
        text = rows.decode(raw, f"record {record}", encoding_errors)
        if text is None:
            continue
        if not text:
            raise FormatError(path, f"record {record}", "empty word")
        words.append(text)
        linenos.append(f"record {record}")
        vecs.append(buf[end + 1:pos])
        if len(words) == _CHUNK_ROWS or record == n_read:
            rows.add(words, linenos,
                     np.frombuffer(b"".join(vecs), dtype="<f4").reshape(len(words), dim)
                     .astype(np.float32))
            progress(len(words))
            words, linenos, vecs = [], [], []
    if words:
        rows.add(words, linenos, np.frombuffer(b"".join(vecs), dtype="<f4")
                 .reshape(len(words), dim).astype(np.float32))
    return rows.words, rows.blocks, rows.stats


def _check_fasttext_bin(path):
    """Read the header and the word list of a fastText ``.bin`` model in bounded pieces
    before the fasttext package loads it (it would hold any word, and allocate whatever
    matrix the header claims): a word longer than :data:`WORD_LIMIT`, an absurd dimension or
    a matrix larger than the file is a :class:`FormatError` first."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8 + 12 * 4 + 8 + 3 * 4 + 2 * 8)
        if len(head) < 92:
            raise FormatError(path, None, "fastText .bin model ends inside its header")
        dim = struct.unpack_from("<i", head, 8)[0]
        if not 1 <= dim <= MAX_DIM:
            raise FormatError(path, None, f"header says {dim:,} dimensions (mapalign reads "
                                          f"1 to {MAX_DIM:,})")
        n_entries = struct.unpack_from("<i", head, 64)[0]
        prune = struct.unpack_from("<q", head, 84)[0]
        buf, pos = f.read(_BUFFER), 0
        for entry in range(n_entries):
            end = buf.find(b"\0", pos, pos + WORD_LIMIT + 1)
            while end < 0 or len(buf) - end < 10:
                if end < 0 and len(buf) - pos > WORD_LIMIT:
                    raise FormatError(path, f"word {entry + 1}", f"word longer than "
                                      f"{WORD_LIMIT:,} bytes")
                more = f.read(_BUFFER)
                if not more:
                    raise FormatError(path, None, "fastText .bin model ends inside its words")
                buf, pos = buf[pos:] + more, 0
                end = buf.find(b"\0", pos, pos + WORD_LIMIT + 1)
            pos = end + 1 + 9  # the word's count (int64) and type (int8)
        offset = f.tell() - (len(buf) - pos) + max(prune, 0) * 8
        f.seek(offset)
        tail = f.read(17)
        if len(tail) == 17 and not tail[0]:  # not quantized: rows and columns of the matrix
            rows, cols = struct.unpack_from("<qq", tail, 1)
            if rows < 0 or cols != dim or rows * cols * 4 > size - offset:
                raise FormatError(path, None, f"its input matrix ({rows:,} x {cols:,}) does "
                                              "not fit the file (truncated or damaged)")


def _load_fasttext_bin(inp, max_vocab, encoding_errors):
    path = inp.path
    if inp.gzip:
        raise FormatError(path, None, "fastText .bin models cannot be read gzipped: gunzip first")
    if not inp.regular:
        raise ValueError(f"{path} is a pipe: the fasttext package reads .bin models from a "
                         "file; save it to a file first")
    try:
        import fasttext
        import fasttext.FastText as _ft
    except ImportError as e:  # pragma: no cover - fasttext is a dependency
        raise RuntimeError("reading fastText .bin needs the 'fasttext' package") from e
    _ft.eprint = lambda *a, **k: None  # silence the load_model deprecation notice
    _check_fasttext_bin(path)
    try:
        model = fasttext.load_model(path)
    except ValueError as e:
        raise FormatError(path, None, f"not a readable fastText model: {e}") from None
    errors = "strict" if encoding_errors == "strict" else "replace"
    try:
        words = model.get_words(on_unicode_error=errors)
    except UnicodeDecodeError as e:
        raise FormatError(path, None, f"a word with bytes that are not UTF-8: {e}") from None
    if max_vocab is not None:
        words = words[:max_vocab]
    vectors = np.stack([model.get_word_vector(w) for w in words]).astype(np.float32)
    return Embeddings(words, vectors, path=path, oov=model.get_word_vector)


def stream_embeddings(path, sink: Callable[[List[str], np.ndarray], None], fmt: str = "auto",
                      encoding_errors: str = "strict", max_vocab: Optional[int] = None,
                      progress: Optional[Callable[[int], None]] = None) -> dict:
    """Read a text or word2vec-binary vectors file chunk by chunk (8,192 rows), with the same
    checks as :func:`load_embeddings`, handing each checked, de-duplicated chunk to
    ``sink(words, matrix)`` instead of keeping it: memory stays bounded whatever the file's
    size. Returns the counts (duplicates, bad encodings). fastText ``.bin`` models are read
    whole (the ``fasttext`` package loads them so) and handed over in chunks."""
    path = os.fspath(path)
    with _Input(path, stream_ok=True) as inp, _gzip_errors(path):  # a pipe too: read once
        fmt = _detect(inp) if fmt == "auto" else fmt
        if fmt == "fasttext-bin":
            emb = _load_fasttext_bin(inp, max_vocab, encoding_errors)
        else:
            return _stream_rows(inp, fmt, sink, encoding_errors, max_vocab, progress)
    for a in range(0, len(emb), _CHUNK_ROWS):
        sink(emb.words[a:a + _CHUNK_ROWS], emb.vectors[a:a + _CHUNK_ROWS])
        if progress:
            progress(min(_CHUNK_ROWS, len(emb) - a))
    return {"duplicates": 0, "bad_encoding": 0}


def _stream_rows(inp, fmt, sink, encoding_errors, max_vocab, progress) -> dict:
    path = inp.path

    class _Streaming(_Rows):
        def store(self, words, matrix):
            self.n = getattr(self, "n", 0) + len(words)
            sink(words, matrix)

    rows = _Streaming(path)
    reader = _read_text if fmt == "text" else _read_word2vec_binary
    reader(inp, max_vocab, encoding_errors, progress or (lambda n: None), rows)
    if not getattr(rows, "n", 0):
        raise FormatError(path, None, "no word vectors in file")
    return rows.stats


class Dictionary(list):
    """The ``(source, target)`` pairs of a dictionary file, in file order; ``path`` names the
    file in every message about it."""

    def __init__(self, pairs=(), path: Optional[str] = None, digest: Optional[dict] = None):
        super().__init__(pairs)
        self.path = path
        self.digest = digest  # {"bytes", "sha256"} of the file as it was read


def dictionary_name(pairs) -> str:
    """How messages name a dictionary: its file, when it came from one."""
    return getattr(pairs, "path", None) or "the dictionary"


def load_dictionary(path) -> Dictionary:
    """Read a bilingual dictionary: ``source target`` per line (MUSE format; tabs allowed;
    several lines per source word allowed; blank lines skipped; exact repeats dropped). A
    third numeric column (a score, as ``mapalign export`` writes) is accepted and ignored;
    a UTF-8 byte-order mark is skipped."""
    path = os.fspath(path)
    pairs, seen = [], set()
    with _Input(path, stream_ok=True, digest=True) as inp, _gzip_errors(path):
        # read once (a pipe too): the checksum a run records is of the bytes read here
        for lineno in itertools.count(1):
            raw = read_line(inp.f, DICT_LINE_LIMIT, path, lineno)
            if not raw:
                break
            if lineno == 1:
                raw = _strip_bom(raw)
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                raise FormatError(path, lineno, f"bytes that are not UTF-8 at column "
                                                f"{e.start + 1}") from None
            if not line:
                continue
            fields = line.split()
            if len(fields) == 3:
                try:
                    float(fields[2])
                except ValueError:
                    raise FormatError(path, lineno, f"expected 'source target' or 'source "
                                                    f"target score', found a third field "
                                                    f"{fields[2]!r} that is not a number")
                fields = fields[:2]
            if len(fields) != 2:
                raise FormatError(path, lineno, f"expected 'source target', found "
                                                f"{len(fields)} fields")
            pair = (fields[0], fields[1])
            for w in pair:
                if len(w) > WORD_LIMIT // 4:
                    check_word(w.encode("utf-8"), path, lineno)
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
        digest = inp.digest()
    if not pairs:
        raise FormatError(path, None, "empty dictionary")
    return Dictionary(pairs, path, digest)


def lookup_word(word: str, vocabulary) -> Optional[str]:
    """How ``translate`` finds a word: as given, else lowercased, else None. ``vocabulary``
    is anything that answers ``in`` (a dict of words, :class:`Embeddings`)."""
    if word in vocabulary:
        return word
    return word.lower() if word.lower() in vocabulary else None


def index_pairs(pairs: Iterable[Tuple[str, str]], src: Embeddings, tgt: Embeddings,
                tgt_limit: Optional[int] = None):
    """Rows of the in-vocabulary pairs, and what was dropped.

    Returns ``(src_rows, tgt_rows, info)`` with ``info`` counting pairs and source words
    kept and dropped; a target word at row ``>= tgt_limit`` counts as out of vocabulary.
    """
    s_rows, t_rows, all_src, kept_src, dropped = [], [], set(), set(), 0
    for s, t in pairs:
        all_src.add(s)
        i, j = src.index.get(s), tgt.index.get(t)
        if i is None or j is None or (tgt_limit is not None and j >= tgt_limit):
            dropped += 1
            continue
        s_rows.append(i)
        t_rows.append(j)
        kept_src.add(s)
    info = dict(pairs=len(s_rows) + dropped, pairs_used=len(s_rows), pairs_oov=dropped,
                source_words=len(all_src), source_words_used=len(kept_src))
    return np.asarray(s_rows, dtype=np.int64), np.asarray(t_rows, dtype=np.int64), info


# How much of a user's file must be known to what it is used with (a run's or a fit's
# vocabularies), measured on ../shared/data. A file of the right languages is known almost
# whole: 100% of the pairs of the es-en, zh-en, fr-en, fi-en and fr-fi dictionaries; English
# vectors of another source, 30-93% of their first 8,192 words (vocabularies of 5-10k words).
# A file of other languages shares only accidental words (numbers, names, loanwords): 0-2.2%
# of the pairs (fr-en and fi-en dictionaries against es-en, es-en against fr-en, zh-en against
# es-en) and 0-3.4% of the first words of vectors (fr, fi, zh against es; es against fr, zh).
# So under REFUSE_BELOW a file is refused (unless the user insists: a vocabulary too small for
# the file looks the same); under WARN_BELOW it is used with a warning. Swapped sides (English
# vectors against the Spanish vocabulary: 5.2%) are told apart by the other side fitting.
REFUSE_BELOW = 0.05
WARN_BELOW = 0.5


def vocabulary_name(side: str, emb_or_words, path=None, vocabulary: bool = True) -> str:
    """How messages name a vocabulary: ``source vocabulary (es.vec, 20,000 words)``
    (``source: es.vec, 20,000 words`` without ``vocabulary``)."""
    path = path or getattr(emb_or_words, "path", None)
    where = f"{os.path.basename(os.fspath(path))}, " if path else ""
    size = f"{where}{len(emb_or_words):,} words"
    return f"{side} vocabulary ({size})" if vocabulary else f"{side}: {size}"


def _go_on() -> str:
    return f"({option('allow_swapped')} to go on anyway)"


def check_pairs(pairs: Sequence[Tuple[str, str]], src: Embeddings, tgt: Embeddings, path,
                *, tgt_limit: Optional[int] = None, allow_swapped: bool = False,
                hint: str = "did you swap SRC and TGT?") -> List[str]:
    """Check a dictionary against the vocabularies it is used with, before it is used; the one
    check of every dictionary a command or an aligner reads (seed or test).

    Under :data:`WARN_BELOW` of its pairs with both words in the vocabularies, the swapped
    direction is counted too: if it fits far better (at least half the pairs, and twice as
    many as given) the languages were probably swapped: :class:`SwappedError`. Otherwise,
    under :data:`REFUSE_BELOW` it is a dictionary of other languages:
    :class:`~mapalign.errors.InputMismatchError`. ``allow_swapped`` goes on with a warning
    instead of either; no usable pair at all (or no pair) is a ``ValueError`` whatever it
    says. Pairs whose target is at row ``>= tgt_limit`` (retrieval's limit) are left out,
    with a warning that says so. Returns the warnings, each naming ``path``."""
    total = len(pairs)
    if total == 0:
        raise ValueError(f"{path}: no pairs (an empty dictionary)")
    n_tgt = len(tgt) if tgt_limit is None else min(tgt_limit, len(tgt))
    rows = [tgt.index[t] for s, t in pairs if s in src.index and t in tgt.index]
    known, used = len(rows), sum(1 for j in rows if j < n_tgt)
    where = f"{vocabulary_name('source', src, vocabulary=False)}; " \
        f"{vocabulary_name('target', tgt, vocabulary=False)}"
    other = "a dictionary of other languages, or vocabularies too small for it?"
    warned = []
    if known < WARN_BELOW * total:
        swapped = sum(1 for s, t in pairs if t in src.index and s in tgt.index)
        share = f"{known:,} of its {total:,} pairs ({100.0 * known / total:.1f}%)"
        if 2 * swapped >= total and swapped >= 2 * max(known, 1) and not allow_swapped:
            raise SwappedError(f"{path}: only {share} fit the vocabularies as given ({where}), "
                               f"but {swapped:,} would with the languages swapped: {hint} "
                               f"{_go_on()}")
        if known == 0:
            raise InputMismatchError(f"{path}: none of its {total:,} pairs has both words in "
                                     f"the vocabularies ({where}): {other}")
        if known < REFUSE_BELOW * total and not allow_swapped:
            raise InputMismatchError(f"{path}: only {share} have both words in the "
                                     f"vocabularies ({where}): {other} {_go_on()}")
        warned.append(f"{path}: low coverage, only {share} have both words in the "
                      "vocabularies; figures from it describe those pairs only")
    if used < known:
        limit = f"the first {n_tgt:,} target words (retrieval's limit, " \
                f"{option('eval_vocab', n_tgt)})"
        if used == 0:
            raise ValueError(f"{path}: none of its {known:,} pairs in the vocabularies has "
                             f"its target among {limit}: raise the limit")
        warned.append(f"{path}: {known - used:,} of its {known:,} pairs in the vocabularies "
                      f"are left out: their target is not among {limit}")
    return warned


def check_vectors(emb, side: str) -> None:
    """What a fit takes as one side: :class:`Embeddings` whose vectors are all finite. A NaN
    or infinite value is a ``ValueError`` naming the side, the file, the row and its word,
    before any solver meets it."""
    if not isinstance(emb, Embeddings):
        raise TypeError(f"{side} vectors: expected mapalign.Embeddings (words and a matrix: "
                        f"Embeddings(words, vectors)), got {type(emb).__name__}")
    V = emb.vectors
    xp = get_array_module(V)
    bad = ~xp.isfinite(V.sum(axis=1, dtype=xp.float64))  # float64: a finite row cannot overflow
    if not bool(bad.any()):
        return
    rows = xp.flatnonzero(bad)
    i = int(rows[0])
    row = V[i]
    col = int(xp.flatnonzero(~xp.isfinite(row))[0])
    value = "NaN" if bool(xp.isnan(row[col])) else ("inf" if float(row[col]) > 0 else "-inf")
    where = f" {emb.path}" if emb.path else ""
    more = f" ({len(rows) - 1:,} more rows hold NaN or inf)" if len(rows) > 1 else ""
    raise ValueError(f"{side} vectors{where}: row {i} ({emb.words[i]!r}) holds {value} "
                     f"(column {col}){more}")


def check_words(words: Sequence[str], own, other, path, side: str,
                allow_swapped: bool = False) -> List[str]:
    """The first words of a vectors file given as ``side`` of a run, against the run's
    vocabularies (``own``: that side's, ``other``: the other's; sets, or
    ``(set, description)``): the same rules as :func:`check_pairs`, per word. A file that fits
    the other side far better is :class:`SwappedError`; one of which under
    :data:`REFUSE_BELOW` is known is :class:`~mapalign.errors.InputMismatchError` (unless
    ``allow_swapped``); under :data:`WARN_BELOW`, a warning (returned)."""
    words = list(words)
    if not words:
        return []
    other_side = "target" if side == "source" else "source"
    (own, own_name), (other, other_name) = (
        v if isinstance(v, tuple) else (v, vocabulary_name(s, v))
        for v, s in ((own, side), (other, other_side)))
    n = len(words)
    mine = sum(w in own for w in words)
    if mine >= WARN_BELOW * n:
        return []
    theirs = sum(w in other for w in words)
    share = f"{mine:,} of its first {n:,} words ({100.0 * mine / n:.1f}%)"
    if 2 * theirs >= n and theirs >= 2 * max(mine, 1) and not allow_swapped:
        raise SwappedError(f"{path}: only {share} are in the run's {own_name}, but {theirs:,} "
                           f"are in its {other_name}: are these {other_side} vectors "
                           f"({option('side', other_side)})? {_go_on()}")
    if mine < REFUSE_BELOW * n and not allow_swapped:
        found = f"none of its first {n:,} words is" if mine == 0 else f"only {share} are"
        nor = f"nor in its {other_name}" if theirs == 0 else \
            f"and {theirs:,} in its {other_name}"
        raise InputMismatchError(f"{path}: {found} in the run's {own_name}, {nor}: vectors "
                                 f"of another language? {_go_on()}")
    return [f"{path}: only {share} are in the run's {own_name}: vectors of another language? "
            "The words it does not know are mapped all the same"]
