"""Bilingual dictionary induction (BDI) precision@k, in the MUSE convention.

* Pairs with a word outside the vocabularies (or a target beyond ``eval_vocab``) are dropped.
* Each remaining source word is one query; it is right at ``k`` if any of its gold
  translations is among its ``k`` best retrieved target words.
* Coverage = source words with at least one usable pair / all source words in the dictionary.
* Retrieval runs over the first ``eval_vocab`` target words; CSLS penalties of the targets use
  the first ``eval_vocab`` mapped source words.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from .backend import get_xp, to_device
from .loading import Embeddings, check_pairs, dictionary_name, index_pairs
from .retrieval import DEFAULT_BUDGET, mean_topk_similarity, nearest


def hits_at_k(retrieved: np.ndarray, gold: Sequence[set], ks=(1, 5, 10)) -> Dict[str, np.ndarray]:
    """For each k, whether each row of ``retrieved`` (queries x ranked targets) holds a gold
    target among its first k."""
    hits = np.array([[t in g for t in row] for row, g in zip(retrieved, gold)], dtype=bool)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), retrieved.shape[1])
    return {f"p@{k}": first < k for k in ks}


def precision_at_k(retrieved: np.ndarray, gold: Sequence[set], ks=(1, 5, 10)) -> Dict[str, float]:
    """Percentages of rows of ``retrieved`` (queries x ranked targets) that hold a gold
    target among their first k, for each k."""
    return {k: float(100.0 * np.mean(h)) for k, h in hits_at_k(retrieved, gold, ks).items()}


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of ``100 * mean(values)``, resampling the queries (source
    words) with replacement, ``n_boot`` times, seeded."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return [None, None]
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for a in range(0, n_boot, 256):  # bounded memory: 256 resamples at a time
        b = min(n_boot, a + 256)
        means[a:b] = values[rng.integers(0, len(values), (b - a, len(values)))].mean(axis=1)
    lo, hi = np.percentile(100 * means, [50 * (1 - level), 100 - 50 * (1 - level)])
    return [float(lo), float(hi)]


def evaluate_bdi(model, src: Embeddings, tgt: Embeddings, pairs: Sequence[Tuple[str, str]],
                 ks=(1, 5, 10), methods=("nn", "csls"), eval_vocab: int = 200000,
                 csls_k: int = 10, device: str = "cpu", budget: int = DEFAULT_BUDGET,
                 progress=None, mapped=None, r_target=None, n_boot: int = 2000,
                 seed: int = 0, return_hits: bool = False,
                 allow_swapped: bool = False) -> dict:
    """P@k of a fitted aligner on a test dictionary, for each retrieval method.

    ``mapped = (S, T)`` gives both vocabularies already in the shared space (a run's cache),
    and ``r_target`` the targets' CSLS penalties; then ``model`` is not used. Each P@k comes
    with a 95% bootstrap interval over the source words (``ci95``, ``n_boot`` resamples,
    ``seed``); ``return_hits`` adds the per-word outcomes (``hits``) and the query words.

    The dictionary is checked first (:func:`~mapalign.loading.check_pairs`): one that fits
    the vocabularies far better swapped (a reversed test file), or of which under 5% of the
    pairs are in them (other languages), raises an
    :class:`~mapalign.errors.InputMismatchError` unless ``allow_swapped``; one with no usable
    pair raises ``ValueError``; low coverage, and pairs left out by ``eval_vocab``, are listed
    in ``warnings``."""
    n_tgt = min(eval_vocab, len(tgt))
    warned = check_pairs(pairs, src, tgt, dictionary_name(pairs), tgt_limit=n_tgt,
                         allow_swapped=allow_swapped)
    s_rows, t_rows, info = index_pairs(pairs, src, tgt, tgt_limit=n_tgt)
    result = dict(info, coverage=100.0 * info["source_words_used"] / max(info["source_words"], 1),
                  eval_vocab=n_tgt, csls_k=csls_k, warnings=warned)
    queries = np.unique(s_rows)
    gold: Dict[int, set] = {}
    for i, j in zip(s_rows, t_rows):
        gold.setdefault(int(i), set()).add(int(j))
    golds = [gold[int(q)] for q in queries]
    xp = get_xp(device)
    n_src = min(eval_vocab, len(src))
    if mapped is not None:
        S, T = to_device(np.asarray(mapped[0][:n_src]), xp), \
            to_device(np.asarray(mapped[1][:n_tgt]), xp)
        Q = to_device(np.asarray(mapped[0][queries]), xp)
    else:
        S, T = model.mapped(src, tgt, n_src, n_tgt, device)
        Q = S[to_device(queries, xp)] if queries.max() < len(S) else \
            model.transform_source(to_device(src.vectors[queries], xp))
    if r_target is not None:
        r_target = to_device(np.asarray(r_target), xp)
    elif "csls" in methods:
        r_target = mean_topk_similarity(T, S, csls_k, budget)
    hits_by_method = {}
    for method in methods:
        idx, _ = nearest(Q, T, max(ks), method, csls_k, r_target=r_target, budget=budget,
                         progress=progress)
        hits = hits_at_k(idx, golds, ks)
        result[method] = {k: float(100.0 * np.mean(h)) for k, h in hits.items()}
        result[method]["ci95"] = {k: bootstrap_ci(h, n_boot, seed) for k, h in hits.items()}
        hits_by_method[method] = hits
    result["queries"] = int(len(queries))
    result["bootstrap"] = {"resamples": n_boot, "seed": seed, "level": 0.95,
                           "unit": "source words"}
    if return_hits:
        result["hits"] = {m: {k: h.tolist() for k, h in hh.items()}
                          for m, hh in hits_by_method.items()}
        result["query_words"] = [src.words[int(q)] for q in queries]
    return result


def compare(a: dict, b: dict, method: str = "csls", k: str = "p@1", n_boot: int = 2000,
            seed: int = 0) -> dict:
    """Paired comparison of two evaluations (``evaluate_bdi(..., return_hits=True)``) on the
    same test dictionary: the difference in P@k over the source words both could query, its
    95% paired bootstrap interval, and the exact McNemar test (a two-sided binomial test on the
    words exactly one of the two gets right)."""
    from scipy.stats import binomtest

    pos_b = {w: i for i, w in enumerate(b["query_words"])}
    shared = [(i, pos_b[w]) for i, w in enumerate(a["query_words"]) if w in pos_b]
    if not shared:
        raise ValueError("the two evaluations share no query word")
    ia, ib = np.array(shared).T
    ha = np.asarray(a["hits"][method][k], dtype=bool)[ia]
    hb = np.asarray(b["hits"][method][k], dtype=bool)[ib]
    only_a, only_b = int(np.sum(ha & ~hb)), int(np.sum(~ha & hb))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    diff = ha.astype(float) - hb.astype(float)
    return {"metric": f"{method} {k}", "words": int(len(ha)),
            "a": float(100 * ha.mean()), "b": float(100 * hb.mean()),
            "difference": float(100 * diff.mean()),
            "difference_ci95": bootstrap_ci(diff, n_boot, seed),
            "only_a_right": only_a, "only_b_right": only_b,
            "mcnemar_exact_p": p, "bootstrap": {"resamples": n_boot, "seed": seed}}
