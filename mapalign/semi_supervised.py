"""Self-learning from a few seed pairs (the "semi-supervised" mode of Artetxe, Labaka &
Agirre, 2018): the self-learning loop of the unsupervised aligner, started from the given
pairs instead of an unsupervised initialisation, the seed pairs kept in every round's
dictionary, then the multi-step framework solved once on the final dictionary.

A seed dictionary is an informative start, so no score is dropped (stochastic induction is
what lets an unsupervised start escape a poor optimum) and there are no restarts or null
draws. What can still go wrong is a start too weak to pin the solution: self-learning then
settles on a wrong one, which still fits the seed pairs it was given. So the fit is checked
on seeds it did not see: the least frequent ``holdout`` fraction of the seed source words is
held out of a first run, whose CSLS P@1 on them is ``heldout_check_``; the mapping returned
is then learnt from all the seed pairs.
"""
from __future__ import annotations

import time
import warnings
from typing import Sequence, Tuple

from .backend import get_array_module, to_device
from .errors import option
from .loading import Embeddings
from .mapping import Mapping, heldout_precision, heldout_split
from .methods import MULTISTEP
from .methods.procrustes import solve as procrustes_solve
from .refinement import RefineOptions, induce, refine
from .retrieval import DEFAULT_BUDGET

# Held-out P@1 under which a run is warned about: runs that worked scored 16-63 (es-en and
# zh-en, 3 draws of 25 and of 100 train pairs; 5 to 20 held-out words), runs from random
# seed pairs 0. The check is coarse (a handful of words): it catches a run that went wrong,
# it does not rank runs that worked.
HELDOUT_WARN = 5.0
_MIN_HELDOUT_WORDS = 5  # fewer seed source words than 5 / holdout: no check


class SemiSupervisedAligner(Mapping):
    """Self-learning from seed pairs: orthogonal Procrustes on the seeds, then rounds of CSLS
    best matches in both directions among the ``self_learning_vocab`` most frequent words
    (seed pairs added), re-solved until the mean CSLS of the induced pairs has not risen by
    ``threshold`` for ``patience`` rounds; the final mapping is the multi-step framework
    (``final="multistep"``) or the last Procrustes solution, solved on the mutual CSLS best
    matches among the ``refine_vocab`` most frequent words, seed pairs added. ``holdout``: the
    fraction of seed source words held out of the check (0: no check)."""

    def __init__(self, normalize="unit,center,unit", device="cpu", seed=0, csls_k=10,
                 self_learning_vocab=20000, refine_vocab=15000, patience=5, threshold=1e-3,
                 final="multistep", holdout=0.2, budget=DEFAULT_BUDGET):
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def _validate(self):
        if self.final not in ("multistep", "procrustes"):
            raise ValueError(f"final must be 'multistep' or 'procrustes', not {self.final!r}")
        if self.patience < 1:
            raise ValueError("patience must be >= 1")
        if not 0 <= self.holdout < 1:
            raise ValueError("holdout must be in [0, 1)")

    def fit(self, src: Embeddings, tgt: Embeddings, pairs: Sequence[Tuple[str, str]],
            progress=None, allow_swapped: bool = False):
        """Fit from ``pairs`` (a reversed dictionary is refused as by the supervised aligner);
        ``progress`` hears the self-learning rounds."""
        t0 = time.perf_counter()
        self._validate()
        xp, X, Z = self._prepare(src, tgt)
        s_rows, t_rows = self._seed_rows(pairs, src, tgt, allow_swapped)
        log = progress or (lambda msg: None)

        self.heldout_check_ = None
        words = len(set(s_rows.tolist()))
        if self.holdout and words * self.holdout >= _MIN_HELDOUT_WORDS:
            is_held, gold = heldout_split(s_rows, t_rows, self.holdout)
            W, _, hist = self._self_learn(X, Z, s_rows[~is_held], t_rows[~is_held],
                                          lambda m: log(f"check: {m}"))
            p1 = heldout_precision(X, Z, W, xp.eye(Z.shape[1], dtype=xp.float32), gold,
                                   min(self.refine_vocab, len(X)), self.csls_k, self.budget)
            self.heldout_check_ = {"words": len(gold), "p@1": p1, "rounds": len(hist)}
            log(f"check: CSLS P@1 {p1:.1f} on the {len(gold)} least frequent seed source "
                "words, held out")
            if p1 < HELDOUT_WARN:
                warnings.warn(
                    f"self-learning without the {len(gold)} least frequent seed source words "
                    f"translates only {p1:.0f}% of them: it probably settled on a wrong "
                    "solution; give more (or cleaner) seed pairs, or fit without "
                    f"{option('semi_supervised', python='self-learning (SupervisedAligner)')}")
        W, W_tgt, self.history_ = self._self_learn(X, Z, s_rows, t_rows, log)
        if self.final == "multistep":
            seeds = (to_device(s_rows, xp), to_device(t_rows, xp))
            n_s, n_t = min(self.refine_vocab, len(X)), min(self.refine_vocab, len(Z))
            i, j, _ = induce(X[:n_s] @ W, Z[:n_t], RefineOptions(csls_k=self.csls_k,
                                                                  budget=self.budget))
            i, j = xp.concatenate([i, seeds[0]]), xp.concatenate([j, seeds[1]])
            W, W_tgt = MULTISTEP(X[i], Z[j])
            self.final_pairs_ = int(len(i))
        self._store(W, W_tgt)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _self_learn(self, X, Z, s_rows, t_rows, log):
        xp = get_array_module(X)
        seeds = (to_device(s_rows, xp), to_device(t_rows, xp))
        opts = RefineOptions(vocab=self.self_learning_vocab, csls_k=self.csls_k,
                             induction="union", until_flat=True, patience=self.patience,
                             threshold=self.threshold, budget=self.budget)
        return refine(X, Z, procrustes_solve, opts, rows=seeds, seed_rows=seeds, log=log)

    def report_(self) -> dict:
        return {"seed_dictionary": self.seed_info_,
                "self_learning": {"rounds": len(self.history_),
                                  "objective": self.history_[-1]["objective"]
                                  if self.history_ else None,
                                  "history": self.history_},
                "heldout_check": self.heldout_check_,
                "final": {"method": self.final, "pairs": getattr(self, "final_pairs_", None)}}
