"""The one refinement loop: solve a mapping on a dictionary, induce a new dictionary with CSLS
among the most frequent words, solve again.

Its options cover every use in mapalign:

* supervised refinement (MUSE's procedure, Conneau et al., 2018): mutual CSLS best matches,
  seed pairs kept, stop once the dictionary repeats;
* unsupervised refinement: the same, without seed pairs, each round scored by an unsupervised
  criterion and the best round kept, stopping at the first round that does not raise it;
* stochastic self-learning (Artetxe, Labaka & Agirre, 2018, ACL): best matches in both
  directions (their union), each score dropped with probability ``1 - keep``; ``keep`` grows by
  ``keep_multiplier`` once the objective (mean CSLS of the induced pairs) has not improved for
  ``patience`` rounds, and the loop ends when that happens at ``keep = 1``;
* self-learning from a few seed pairs (``keep = 1``, ``until_flat``): the same loop without
  drops, seed pairs kept, ending once the objective has not improved for ``patience`` rounds.

The loop runs on numpy or cupy arrays alike; per round it reads one scalar back to the host.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .backend import asnumpy, get_array_module
from .retrieval import DEFAULT_BUDGET, csls_best_both


@dataclass
class RefineOptions:
    rounds: int = 5  # upper bound on rounds (self-learning: 100 x rounds)
    vocab: int = 15000  # dictionary induction among this many most frequent words per side
    csls_k: int = 10
    induction: str = "mutual"  # "mutual" or "union" (both directions)
    keep: float = 1.0  # < 1: stochastic induction
    keep_multiplier: float = 2.0
    patience: int = 10
    threshold: float = 1e-6
    stop_when_repeated: bool = True
    stop_when_no_gain: bool = False  # with a criterion: stop at the first round not above the best
    until_flat: bool = False  # keep = 1: stop once the objective stops rising (as self-learning)
    budget: int = DEFAULT_BUDGET


def _unique_pairs(i, j, m, xp):
    code = xp.unique(i.astype(xp.int64) * m + j.astype(xp.int64))
    return code // m, code % m


def induce(S, T, opts: RefineOptions, rng=None):
    """Rows ``(i, j)`` of an induced dictionary between mapped ``S`` and ``T`` and the mean CSLS
    score of the pairs of both directions (the self-learning objective)."""
    xp = get_array_module(S, T)
    fwd, fwd_s, bwd, bwd_s = csls_best_both(S, T, opts.csls_k, opts.keep, rng, opts.budget)
    n, m = S.shape[0], T.shape[0]
    if opts.induction == "mutual":
        i = xp.nonzero(bwd[fwd] == xp.arange(n))[0]
        j = fwd[i]
    elif opts.induction == "union":
        i = xp.concatenate([xp.arange(n), bwd])
        j = xp.concatenate([fwd, xp.arange(m)])
    else:
        raise ValueError(f"induction must be 'mutual' or 'union', not {opts.induction!r}")
    obj = (_finite_mean(fwd_s, xp) + _finite_mean(bwd_s, xp)) / 2
    return i, j, obj


def _finite_mean(v, xp):
    """Mean of the finite entries (a stochastic round can drop every candidate of a row), on
    the device: a boolean mask would make CuPy wait for the count."""
    finite = xp.isfinite(v)
    return xp.where(finite, v, 0).sum() / finite.sum().astype(v.dtype)  # as xp.mean does


def refine(X, Z, solve: Callable, opts: RefineOptions, *, rows=None, W=None, seed_rows=None,
           criterion: Optional[Callable] = None, criterion_name: str = "criterion", rng=None,
           log=None):
    """Run the loop from the dictionary ``rows = (src_rows, tgt_rows)`` or from a mapping
    ``W = (W_src, W_tgt)``.

    ``solve(Xs, Zs) -> (W_src, W_tgt)`` fits a mapping on matched rows. ``seed_rows`` (a pair of
    index arrays) are added to every induced dictionary. With ``criterion(W_src, W_tgt)`` every
    round is scored and the best-scoring mapping is returned (the first mapping included);
    otherwise the last; ``criterion_name`` names it in the ``log`` lines. Returns ``(W_src,
    W_tgt, history)``.
    """
    xp = get_array_module(X, Z)
    n, m = min(opts.vocab, X.shape[0]), min(opts.vocab, Z.shape[0])
    W_src, W_tgt = solve(X[rows[0]], Z[rows[1]]) if W is None else W
    history = []
    best = None
    if criterion is not None:
        c = criterion(W_src, W_tgt)
        best = (W_src, W_tgt, c, 0)
        history.append({"round": 0, "criterion": c})
        if log:
            log(f"refinement: round 0 (no refinement), {criterion_name} {c:.4f}")
    keep = opts.keep
    best_obj, last_gain, previous = -np.inf, 0, None
    self_learning = opts.keep < 1 or opts.until_flat
    max_rounds = opts.rounds * 100 if self_learning else opts.rounds
    for it in range(1, max_rounds + 1):
        local = RefineOptions(**{**opts.__dict__, "keep": keep})
        i, j, obj = induce(X[:n] @ W_src, Z[:m] @ W_tgt, local, rng)
        if seed_rows is not None:
            i, j = _unique_pairs(xp.concatenate([i, seed_rows[0]]),
                                 xp.concatenate([j, seed_rows[1]]), Z.shape[0], xp)
        obj = float(obj)
        entry = {"round": it, "pairs": int(len(i)), "objective": obj}
        if self_learning:
            entry["keep"] = keep
            if obj - best_obj > opts.threshold:
                best_obj, last_gain = obj, it
            if it - last_gain >= opts.patience:
                if keep >= 1:
                    history.append(entry)
                    if log:
                        log(f"self-learning: round {it}, objective {obj:.4f}: no gain for "
                            f"{opts.patience} rounds, stopped")
                    break
                keep, last_gain = min(1.0, keep * opts.keep_multiplier), it
                if log:
                    log(f"self-learning: round {it}, objective {obj:.4f}, keep {keep:.2f}")
        elif opts.stop_when_repeated:
            key = asnumpy(xp.stack([i, j]))
            if previous is not None and previous.shape == key.shape and \
                    np.array_equal(previous, key):
                history.append(dict(entry, repeated=True))
                break
            previous = key
        W_src, W_tgt = solve(X[i], Z[j])
        if criterion is not None:
            c = criterion(W_src, W_tgt)
            entry["criterion"] = c
            if c > best[2]:
                best = (W_src, W_tgt, c, it)
            elif opts.stop_when_no_gain:
                history.append(dict(entry, stopped="criterion did not rise"))
                if log:
                    log(f"refinement: round {it}, {criterion_name} {c:.4f} not above round "
                        f"{best[3]}'s {best[2]:.4f}: stopped, round {best[3]} kept")
                break
        history.append(entry)
        if log and not self_learning:
            log(f"refinement: round {it}, {entry['pairs']} pairs"
                + (f", {criterion_name} {entry['criterion']:.4f}" if criterion else ""))
    if best is not None:
        W_src, W_tgt = best[0], best[1]
    return W_src, W_tgt, history
