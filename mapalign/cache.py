"""What later commands reuse from a fitted run, kept in ``RUN/cache/``.

* ``source.words`` / ``target.words``: the vocabularies as read (one word a line, UTF-8);
* ``source.npy`` / ``target.npy``: every word mapped into the shared space (float32);
* ``penalty.v{V}.k{K}.npy``: the CSLS penalty ``r_S`` of each of the first ``V`` targets (mean
  similarity with its ``K`` nearest among the first ``V`` mapped source words).

The first command that needs an entry computes it (``evaluate``, ``export`` or ``translate``);
the next ones memory-map it instead of reading the input files and searching again. Every file
is written atomically; ``index.json``, written last, ties the cache to the mapping's checksum and
lists each file's size, so a cache from an earlier fit, or one left half-written, is rebuilt
rather than used.
"""
from __future__ import annotations

import json
import os
from typing import Callable, List, Optional, Tuple

import numpy as np

from .export import atomic_file, write_json
from .retrieval import DEFAULT_BUDGET, mean_topk_similarity

CACHE = "cache"
INDEX = "index.json"
SIDES = ("source", "target")


class RunCache:
    def __init__(self, run_dir: str, report: dict):
        self.folder = os.path.join(run_dir, CACHE)
        self.mapping_sha = report["mapping"]["sha256"]
        self.index = self._read_index()

    # ---- bookkeeping
    def _read_index(self) -> dict:
        path = os.path.join(self.folder, INDEX)
        try:
            with open(path, encoding="utf-8") as f:
                index = json.load(f)
        except (OSError, ValueError):
            return {"mapping_sha256": self.mapping_sha, "files": {}}
        if not isinstance(index, dict) or index.get("mapping_sha256") != self.mapping_sha:
            return {"mapping_sha256": self.mapping_sha, "files": {}}  # another fit's cache
        return index

    def _valid(self, name: str) -> bool:
        size = self.index["files"].get(name)
        path = os.path.join(self.folder, name)
        return size is not None and os.path.exists(path) and os.path.getsize(path) == size

    def _record(self, name: str):
        self.index["files"][name] = os.path.getsize(os.path.join(self.folder, name))
        write_json(os.path.join(self.folder, INDEX), self.index)

    def _save_npy(self, name: str, array):
        with atomic_file(os.path.join(self.folder, name)) as f:
            np.save(f, np.ascontiguousarray(array, dtype=np.float32))
        self._record(name)

    # ---- the mapped vocabularies
    def has_vectors(self) -> bool:
        return all(self._valid(f"{s}.npy") and self._valid(f"{s}.words") for s in SIDES)

    def store_vectors(self, model, src, tgt):
        """Map both vocabularies once and keep them (and their words)."""
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
            self._save_npy(name, _penalties(self, vocab, k, budget, progress))
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


def cached_vectors(run_dir: str, report: dict, model, load_inputs: Callable[[], Tuple]):
    """The run's cache with its mapped vectors present, building them (from
    ``load_inputs() -> (src, tgt)``) the first time; in memory where the run directory cannot
    be written."""
    cache = RunCache(run_dir, report)
    if cache.has_vectors():
        return cache
    src, tgt = load_inputs()
    if not os.access(run_dir, os.W_OK):
        return MemoryCache(model, src, tgt)
    cache.store_vectors(model, src, tgt)
    return cache
