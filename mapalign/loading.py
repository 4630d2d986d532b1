"""Loading word vectors (word2vec/fastText text and binary, fastText ``.bin``, gzip) and
bilingual dictionaries, with errors that name the file and the line."""
from __future__ import annotations

import contextlib
import gzip
import os
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


def _is_gzip(path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open(path):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


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
    with _open(path) as f:
        head = f.read(4)
    if len(head) == 4 and struct.unpack("<i", head)[0] == _FASTTEXT_MAGIC:
        return "fasttext-bin"
    with _open(path) as f:
        header = _parse_header(_strip_bom(f.readline()))
        if header is None:
            return "text"
        line = f.readline(32 * header[1] + 4096)
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
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise FormatError(path, None, "empty file")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "fasttext-bin":
        return _load_fasttext_bin(path, max_vocab, encoding_errors)
    reader = _read_text if fmt == "text" else _read_word2vec_binary
    with _gzip_errors(path):
        words, blocks, stats = reader(path, max_vocab, encoding_errors,
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


def _read_text(path, max_vocab, encoding_errors, progress, rows=None):
    rows = rows if rows is not None else _Rows(path)
    with _open(path) as f:
        first = _strip_bom(f.readline())
        header = _parse_header(first)
        n_header, dim = header if header else (None, None)
        if header is not None and dim < 1:
            raise FormatError(path, 1, f"header says {dim} dimensions")
        pending = [] if header else [(1, first)]
        lineno = 1
        words: List[str] = []
        texts: List[str] = []
        linenos: List[int] = []
        n_rows = 0

        def lines():
            yield from pending
            for i, raw in enumerate(f, start=2):
                yield i, raw

        for lineno, raw in lines():
            if max_vocab is not None and n_rows >= max_vocab:
                break
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
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


def _read_word2vec_binary(path, max_vocab, encoding_errors, progress, rows=None):
    rows = rows if rows is not None else _Rows(path)
    with _open(path) as f:
        header = _parse_header(f.readline())
        if header is None:
            raise FormatError(path, 1, "word2vec binary needs a header 'N D'")
        n, dim = header
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
                more = f.read(1 << 20)
                if not more:
                    raise FormatError(path, None, f"file ends inside record {record} of {n} "
                                                  "(truncated word2vec binary)")
                buf = buf[pos:] + more
                pos = 0
            raw = buf[pos:end].lstrip(b"\n")
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


def _load_fasttext_bin(path, max_vocab, encoding_errors):
    if _is_gzip(path):
        raise FormatError(path, None, "fastText .bin models cannot be read gzipped: gunzip first")
    try:
        import fasttext
        import fasttext.FastText as _ft
    except ImportError as e:  # pragma: no cover - fasttext is a dependency
        raise RuntimeError("reading fastText .bin needs the 'fasttext' package") from e
    _ft.eprint = lambda *a, **k: None  # silence the load_model deprecation notice
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
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise FormatError(path, None, "empty file")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "fasttext-bin":
        emb = _load_fasttext_bin(path, max_vocab, encoding_errors)
        for a in range(0, len(emb), _CHUNK_ROWS):
            sink(emb.words[a:a + _CHUNK_ROWS], emb.vectors[a:a + _CHUNK_ROWS])
            if progress:
                progress(min(_CHUNK_ROWS, len(emb) - a))
        return {"duplicates": 0, "bad_encoding": 0}

    class _Streaming(_Rows):
        def store(self, words, matrix):
            self.n = getattr(self, "n", 0) + len(words)
            sink(words, matrix)

    rows = _Streaming(path)
    reader = _read_text if fmt == "text" else _read_word2vec_binary
    with _gzip_errors(path):
        reader(path, max_vocab, encoding_errors, progress or (lambda n: None), rows)
    if not getattr(rows, "n", 0):
        raise FormatError(path, None, "no word vectors in file")
    return rows.stats


class Dictionary(list):
    """The ``(source, target)`` pairs of a dictionary file, in file order; ``path`` names the
    file in every message about it."""

    def __init__(self, pairs=(), path: Optional[str] = None):
        super().__init__(pairs)
        self.path = path


def dictionary_name(pairs) -> str:
    """How messages name a dictionary: its file, when it came from one."""
    return getattr(pairs, "path", None) or "the dictionary"


def load_dictionary(path) -> Dictionary:
    """Read a bilingual dictionary: ``source target`` per line (MUSE format; tabs allowed;
    several lines per source word allowed; blank lines skipped; exact repeats dropped). A
    third numeric column (a score, as ``mapalign export`` writes) is accepted and ignored;
    a UTF-8 byte-order mark is skipped."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    pairs, seen = [], set()
    with _open(path) as f, _gzip_errors(path):
        for lineno, raw in enumerate(f, start=1):
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
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    if not pairs:
        raise FormatError(path, None, "empty dictionary")
    return Dictionary(pairs, path)


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
