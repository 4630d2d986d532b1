"""What later commands reuse from a fitted run, kept in ``RUN/cache/``.

* ``source.words`` / ``target.words``: the vocabularies as read (one word a line, UTF-8);
* ``source.npy`` / ``target.npy``: every word mapped into the shared space (float32);
* ``penalty.v{V}.k{K}.npy``: the CSLS penalty ``r_S`` of each of the first ``V`` targets (mean
  similarity with its ``K`` nearest among the first ``V`` mapped source words).

The first command that needs an entry computes it (``evaluate``, ``export`` or ``translate``);
the next ones memory-map it instead of reading the input files and searching again. Every file
is written atomically; ``index.json``, written after each file, ties the cache to the mapping's
checksum and records each file's size, modification time and sha256, so a cache from an
earlier fit, or one left half-written, is rebuilt rather than used.

Before an entry is used it is checked: by size and modification time when they are the ones
recorded (the fast path of a repeated command: no file is read whole), by its whole sha256 when
the time differs or with ``verify``. An entry whose checksum differs is never used: a
:class:`CacheWarning` names it and it is rebuilt from the run's inputs. A file changed in place
while keeping its size and time is only caught with ``verify`` (as for the inputs).
"""
from __future__ import annotations

import contextlib
import json
import os
import warnings
from typing import Callable, List, Optional, Tuple

import numpy as np

from .export import atomic_file, write_json
from .lock import RunLockedError, locked
from .retrieval import DEFAULT_BUDGET, mean_topk_similarity
from .store import unwritable, warn_unwritable
from .store import sha256  # with SHA instructions faster than blake2b (docs/benchmark.md)

CACHE = "cache"
INDEX = "index.json"
SIDES = ("source", "target")
_ENTRY = {"bytes": int, "mtime_ns": int, "sha256": str}  # what index.json records of a file


class CacheWarning(UserWarning):
    """A cache entry was damaged (its checksum is not the one recorded): it is rebuilt."""


class RunCache:
    def __init__(self, run_dir: str, report: dict, verify: bool = False):
        self.folder = os.path.join(run_dir, CACHE)
        self.mapping_sha = report["mapping"]["sha256"]
        self.verify = verify  # check every entry by its whole checksum
        self.index = self._read_index()

    # ---- bookkeeping
    def _read_index(self) -> dict:
        path = os.path.join(self.folder, INDEX)
        try:
            with open(path, encoding="utf-8") as f:
                index = json.load(f)
        except (OSError, ValueError):
            return {"mapping_sha256": self.mapping_sha, "files": {}}
        if not isinstance(index, dict) or index.get("mapping_sha256") != self.mapping_sha \
                or not isinstance(index.get("files"), dict):
            return {"mapping_sha256": self.mapping_sha, "files": {}}  # another fit's cache
        # entries not of the form written (an older version's, or a damaged index) are rebuilt
        index["files"] = {name: e for name, e in index["files"].items()
                          if isinstance(e, dict) and all(type(e.get(k)) is t
                                                         for k, t in _ENTRY.items())}
        return index

    def _valid(self, name: str) -> bool:
        """Whether the entry ``name`` may be used: recorded, and the file the index records
        (size and time, or the whole checksum when the time differs or with ``verify``). A
        file that differs is never used: a warning names it, and the caller rebuilds it."""
        entry = self.index["files"].get(name)
        path = os.path.join(self.folder, name)
        try:
            st = os.stat(path)
        except OSError:
            return False
        if entry is None:
            return False
        if st.st_size == entry["bytes"]:
            if st.st_mtime_ns == entry["mtime_ns"] and not self.verify:
                return True
            if sha256(path) == entry["sha256"]:
                if st.st_mtime_ns != entry["mtime_ns"]:  # same bytes (copied): fast next time
                    entry["mtime_ns"] = st.st_mtime_ns
                    with contextlib.suppress(OSError):
                        write_json(os.path.join(self.folder, INDEX), self.index)
                return True
            why = "its checksum is not the one recorded when it was written"
        else:
            why = f"{st.st_size:,} bytes, not the {entry['bytes']:,} written"
        warnings.warn(f"{path} is damaged ({why}): not used, rebuilt from the run's inputs",
                      CacheWarning, stacklevel=2)
        return False

    def _record(self, name: str):
        path = os.path.join(self.folder, name)
        st = os.stat(path)
        self.index["files"][name] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                                     "sha256": sha256(path)}
        # read, merge and replace holding the run's lock: commands filling the cache at once
        # keep each other's entries (a fit rewriting the run: not recorded, rebuilt next time)
        with contextlib.suppress(RunLockedError), \
                locked(os.path.dirname(self.folder), "cache", wait=10):
            on_disk = self._read_index()
            on_disk["files"][name] = self.index["files"][name]
            if not name.startswith("penalty."):  # vectors rebuilt: the old penalties go too
                on_disk["files"] = {n: e for n, e in on_disk["files"].items()
                                    if not n.startswith("penalty.") or n in self.index["files"]}
            self.index = on_disk
            write_json(os.path.join(self.folder, INDEX), self.index)

    def _save_npy(self, name: str, array):
        with atomic_file(os.path.join(self.folder, name)) as f:
            np.save(f, np.ascontiguousarray(array, dtype=np.float32))
        self._record(name)

    # ---- the mapped vocabularies
    def has_vectors(self) -> bool:
        return all(self._valid(f"{s}.npy") and self._valid(f"{s}.words") for s in SIDES)

    def store_vectors(self, model, src, tgt):
        """Map both vocabularies once and keep them (and their words). The penalties computed
        from vectors kept before are dropped with them."""
        self.index["files"] = {n: e for n, e in self.index["files"].items()
                               if not n.startswith("penalty.")}
        for side, emb, transform in (("source", src, model.transform_source),
                                     ("target", tgt, model.transform_target)):
            with atomic_file(os.path.join(self.folder, f"{side}.words")) as f:
                f.write(("\n".join(emb.words) + "\n").encode("utf-8"))
            self._record(f"{side}.words")
            self._save_npy(f"{side}.npy", transform(emb.vectors))

    def vectors(self, side: str) -> np.ndarray:
        """The mapped vectors of one side, memory-mapped (read only)."""
        return np.load(os.path.join(self.folder, f"{side}.npy"), mmap_mode="r")

    def words(self, side: str) -> List[str]:
        with open(os.path.join(self.folder, f"{side}.words"), encoding="utf-8") as f:
            return f.read().split("\n")[:-1]

    # ---- CSLS penalties
    def penalties(self, vocab: int, k: int, budget: int = DEFAULT_BUDGET,
                  progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
        """``r_S`` of the first ``vocab`` targets against the first ``vocab`` mapped source
        words (each side cut at its own length), computed once per ``(vocab, k)``."""
        name = f"penalty.v{vocab}.k{k}.npy"
        if not self._valid(name):
            r = _penalties(self, vocab, k, budget, progress)
            try:
                self._save_npy(name, r)
            except OSError as e:  # a full disk, a read-only run: the answer all the same
                if not unwritable(e):
                    raise
                warn_unwritable(os.path.dirname(self.folder), e)
                return r
        return np.load(os.path.join(self.folder, name))


class MemoryCache:
    """The same answers as :class:`RunCache`, kept in memory: for a run directory that cannot
    be written (read-only, shared)."""

    def __init__(self, model, src, tgt):
        self._vectors = {"source": model.transform_source(src.vectors),
                         "target": model.transform_target(tgt.vectors)}
        self._words = {"source": list(src.words), "target": list(tgt.words)}
        self._penalties = {}

    def vectors(self, side):
        return self._vectors[side]

    def words(self, side):
        return self._words[side]

    def penalties(self, vocab, k, budget=DEFAULT_BUDGET, progress=None):
        if (vocab, k) not in self._penalties:
            self._penalties[(vocab, k)] = _penalties(self, vocab, k, budget, progress)
        return self._penalties[(vocab, k)]


def _penalties(cache, vocab, k, budget, progress):
    """CSLS ``r_S`` of a cache's first ``vocab`` targets against its first ``vocab`` mapped
    source words."""
    return mean_topk_similarity(cache.vectors("target")[:vocab],
                                cache.vectors("source")[:vocab], k, budget, progress)


def cached_vectors(run_dir: str, report: dict, model, load_inputs: Callable[[], Tuple],
                   verify: bool = False):
    """The run's cache with its mapped vectors present, building them (from
    ``load_inputs() -> (src, tgt)``) the first time or when an entry is damaged; in memory where
    the run directory cannot be written. ``verify``: check each entry by its whole checksum."""
    cache = RunCache(run_dir, report, verify)
    if cache.has_vectors():
        return cache
    src, tgt = load_inputs()
    try:
        cache.store_vectors(model, src, tgt)
    except OSError as e:  # a full disk, a read-only run (its first write says which, by its
        # error: an os.access check would call a read-only mount "permission denied")
        if not unwritable(e):
            raise
        warn_unwritable(run_dir, e)
        return MemoryCache(model, src, tgt)
    return cache
