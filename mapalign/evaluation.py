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
from .loading import Embeddings, index_pairs
from .retrieval import DEFAULT_BUDGET, mean_topk_similarity, nearest


def precision_at_k(retrieved: np.ndarray, gold: Sequence[set], ks=(1, 5, 10)) -> Dict[str, float]:
    """Percentages of rows of ``retrieved`` (queries x ranked targets) that hold a gold
    target among their first k, for each k."""
    hits = np.array([[t in g for t in row] for row, g in zip(retrieved, gold)], dtype=bool)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), retrieved.shape[1])
    return {f"p@{k}": float(100.0 * np.mean(first < k)) for k in ks}


def evaluate_bdi(model, src: Embeddings, tgt: Embeddings, pairs: Sequence[Tuple[str, str]],
                 ks=(1, 5, 10), methods=("nn", "csls"), eval_vocab: int = 200000,
                 csls_k: int = 10, device: str = "cpu", budget: int = DEFAULT_BUDGET,
                 progress=None, mapped=None, r_target=None) -> dict:
    """P@k of a fitted aligner on a test dictionary, for each retrieval method.

    ``mapped = (S, T)`` gives both vocabularies already in the shared space (a run's cache),
    and ``r_target`` the targets' CSLS penalties; then ``model`` is not used."""
    n_tgt = min(eval_vocab, len(tgt))
    s_rows, t_rows, info = index_pairs(pairs, src, tgt, tgt_limit=n_tgt)
    result = dict(info, coverage=100.0 * info["source_words_used"] / max(info["source_words"], 1),
                  eval_vocab=n_tgt, csls_k=csls_k)
    if len(s_rows) == 0:
        result.update({m: {f"p@{k}": None for k in ks} for m in methods})
        return result
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
        S, T = model.mapped(src, tgt, n_src, n_tgt, xp)
        Q = S[to_device(queries, xp)] if queries.max() < len(S) else \
            model.transform_source(src.vectors[queries], xp)
    if r_target is not None:
        r_target = to_device(np.asarray(r_target), xp)
    elif "csls" in methods:
        r_target = mean_topk_similarity(T, S, csls_k, budget)
    for method in methods:
        idx, _ = nearest(Q, T, max(ks), method, csls_k, r_target=r_target, budget=budget,
                         progress=progress)
        result[method] = precision_at_k(idx, golds, ks)
    result["queries"] = int(len(queries))
    return result
