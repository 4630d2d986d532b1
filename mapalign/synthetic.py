"""Generated word-vector pairs with a known answer: the embedded demo and test fixtures.

A latent "concept" space is drawn as a clustered cloud with a decaying spectrum (real
embeddings are neither isotropic nor unclustered). Each language sees the concepts through
its own noise; the target side is rotated by a random orthogonal matrix and, for hard pairs,
also distorted by a non-orthogonal linear map and a non-linear warp, so that no rotation
matches it exactly. Frequency ranks are shuffled locally between the two sides and the target
has words with no source counterpart, as in real vocabularies.
"""
from __future__ import annotations

import gzip
import io
import os
from typing import List, Tuple

import numpy as np

from .loading import Embeddings

_SRC_SYLLABLES = ["ka", "lo", "mi", "ne", "pu", "ri", "so", "ta", "vu", "ze", "ba", "do"]
_TGT_SYLLABLES = ["ar", "el", "im", "on", "us", "yr", "ek", "ot", "ip", "ag", "ul", "ez"]


def _names(n: int, syllables: List[str]) -> List[str]:
    base = len(syllables)
    out = []
    for i in range(n):
        parts, j = [], i
        while True:
            parts.append(syllables[j % base])
            j //= base
            if j == 0:
                break
        out.append("".join(reversed(parts)))
    return out


def _orthogonal(d, rng):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def make_pair(n_words: int = 2000, dim: int = 40, noise: float = 0.8, distortion: float = 0.0,
              warp: float = 0.0, rank_shuffle: float = 0.05, extra_target: float = 0.2,
              clusters: int = 40, seed: int = 0, test_fraction: float = 0.25,
              noise_growth: float = 0.0
              ) -> Tuple[Embeddings, Embeddings, List[Tuple[str, str]], List[Tuple[str, str]]]:
    """A source/target pair and train/test dictionaries.

    ``noise``: per-language noise relative to the concept spread; ``distortion``: size of a
    random non-orthogonal linear component on the target side; ``warp``: strength of a
    ``tanh`` warp of the target (non-linear); ``rank_shuffle``: how far frequency ranks move
    between the sides (fraction of the vocabulary); ``extra_target``: target-only words as a
    fraction of ``n_words``. The test dictionary holds the least frequent ``test_fraction`` of
    the source words, as real splits do. ``noise_growth``: the noise of the word of frequency
    rank ``r`` is multiplied by ``1 + noise_growth * r / n_words`` on both sides, as rare words'
    vectors are estimated from fewer contexts: the pairs of distant languages, where only the
    frequent words' neighbourhoods still correspond, are made this way.
    """
    rng = np.random.default_rng(seed)
    spectrum = (np.arange(1, dim + 1) ** -0.5)
    centers = rng.standard_normal((clusters, dim)) * 1.2
    n_extra = int(round(extra_target * n_words))
    total = n_words + n_extra
    concepts = centers[rng.integers(0, clusters, total)] + rng.standard_normal((total, dim))
    concepts *= spectrum

    growth = 1 + noise_growth * np.arange(total)[:, None] / n_words
    src = concepts[:n_words] + noise * growth[:n_words] * rng.standard_normal((n_words, dim)) \
        * spectrum
    tgt = concepts + noise * growth * rng.standard_normal((total, dim)) * spectrum
    if distortion:
        tgt = tgt @ (np.eye(dim) + distortion * rng.standard_normal((dim, dim)) / np.sqrt(dim))
    if warp:
        scale = np.abs(tgt).mean()
        tgt = tgt + warp * scale * np.tanh(tgt @ _orthogonal(dim, rng) / scale)
    tgt = tgt @ _orthogonal(dim, rng)

    # target frequency order: the concepts' ranks jittered, extra words spread among them
    keys = np.concatenate([np.arange(n_words), rng.uniform(0, n_words, n_extra)])
    keys = keys + rng.normal(0, rank_shuffle * n_words, total)
    tgt_order = np.argsort(keys, kind="stable")  # row r of the target holds concept tgt_order[r]
    tgt = tgt[tgt_order]
    tgt_row_of = np.empty(total, dtype=np.int64)
    tgt_row_of[tgt_order] = np.arange(total)

    src_words = _names(n_words, _SRC_SYLLABLES)
    tgt_words = _names(total, _TGT_SYLLABLES)
    pairs = [(src_words[i], tgt_words[tgt_row_of[i]]) for i in range(n_words)]
    n_test = int(round(test_fraction * n_words))
    return (Embeddings(src_words, src.astype(np.float32)),
            Embeddings(tgt_words, tgt.astype(np.float32)),
            pairs[:n_words - n_test], pairs[n_words - n_test:])


def vec_bytes(emb: Embeddings) -> bytes:
    """The ``.vec`` text of embeddings (small data only)."""
    buf = io.StringIO()
    buf.write(f"{len(emb)} {emb.dim}\n")
    for w, v in zip(emb.words, emb.vectors):
        buf.write(w + " " + " ".join(f"{x:.5f}" for x in v) + "\n")
    return buf.getvalue().encode("utf-8")


def write_demo(folder, **kwargs) -> dict:
    """Write the demo pair into ``folder`` (gzipped ``.vec`` and dictionaries, byte-for-byte
    reproducible) and return the paths."""
    from .export import atomic_file

    src, tgt, train, test = make_pair(**kwargs)
    paths = {name: os.path.join(folder, name) for name in
             ("src.vec.gz", "tgt.vec.gz", "train.txt", "test.txt")}
    for name, emb in (("src.vec.gz", src), ("tgt.vec.gz", tgt)):
        with atomic_file(paths[name]) as f:
            f.write(gzip.compress(vec_bytes(emb), mtime=0))
    for name, pairs in (("train.txt", train), ("test.txt", test)):
        with atomic_file(paths[name]) as f:
            f.write("".join(f"{s} {t}\n" for s, t in pairs).encode("utf-8"))
    return paths


def make_family(langs=("aa", "bb", "hub"), n_words: int = 1500, dim: int = 30,
                noise: float = 0.3, hub_noise: float = 0.3, overlap: float = 0.8,
                clusters: int = 40, seed: int = 0):
    """A generated family of languages over one latent concept space: each language sees a
    random ``overlap`` share of the concepts (in its own frequency order), with its own noise
    (``hub_noise`` for the last language, the hub) and its own random rotation. Returns
    ``(spaces, dictionaries, rotations)``: ``{lang: Embeddings}``, exact dictionaries for every
    pair ``{(a, b): [(word_a, word_b), ...]}`` over the concepts both see, and each
    language's rotation (the map back to the latent space is its transpose)."""
    rng = np.random.default_rng(seed)
    spectrum = np.arange(1, dim + 1) ** -0.5
    centers = rng.standard_normal((clusters, dim)) * 1.2
    total = int(round(n_words / overlap))
    concepts = (centers[rng.integers(0, clusters, total)] + rng.standard_normal((total, dim))) \
        * spectrum
    spaces, seen, rotations = {}, {}, {}
    for n, lang in enumerate(langs):
        sigma = hub_noise if n == len(langs) - 1 else noise
        ids = np.sort(rng.choice(total, n_words, replace=False))  # frequency order kept
        vecs = concepts[ids] + sigma * rng.standard_normal((n_words, dim)) * spectrum
        rotations[lang] = _orthogonal(dim, rng)
        words = [f"{lang}{i}" for i in range(n_words)]
        spaces[lang] = Embeddings(words, (vecs @ rotations[lang]).astype(np.float32))
        seen[lang] = {int(c): w for c, w in zip(ids, words)}
    dictionaries = {}
    for a in langs:
        for b in langs:
            if a < b or (a != b and b == langs[-1] and a != langs[-1]):
                if (b, a) in dictionaries:
                    continue
                shared = sorted(set(seen[a]) & set(seen[b]))
                dictionaries[(a, b)] = [(seen[a][c], seen[b][c]) for c in shared]
    return spaces, dictionaries, rotations
