"""The unsupervised aligner: initialisation, stochastic self-learning, refinement, model
selection by an unsupervised criterion, and an honest convergence test."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import default_rng
from ..loading import Embeddings
from ..mapping import Mapping
from ..methods import procrustes
from ..methods import MULTISTEP
from ..refinement import RefineOptions, induce, refine
from .adversarial import adversarial_init, schedule_of
from .criterion import convergence_test, criterion_and_translations
from .seeds import identical_dictionary, random_dictionary
from .similarity import similarity_dictionary

INITS = ("similarity", "adversarial", "identical", "numerals")
_NULL_SEED_STRIDE = 10007


class _Abandoned(Exception):
    """Raised in a procedure still running when its fit has ended (an error elsewhere)."""


def _blas_threads(workers: int, xp):
    """The CPU's BLAS threads shared among ``workers`` concurrent procedures: each product
    then runs on its own core instead of every product fighting for all of them (es-en,
    2 cores, 2 procedures at once: 26.6 s a fit with one BLAS thread each, 37.9 s without
    the limit, 43.8 s one procedure at a time)."""
    if workers <= 1 or xp is not np:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, _cores() // workers), user_api="blas")


def _cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def _labelled(log, name):
    return lambda msg: log(f"{name}: {msg}")


class UnsupervisedAligner(Mapping):
    """Learn an orthogonal mapping with no dictionary.

    One *procedure* turns a start into a mapping: stochastic self-learning (Artetxe et al., 2018)
    among the ``self_learning_vocab`` most frequent words, then ``refine`` rounds of Procrustes on
    mutual CSLS best matches among the ``refine_vocab`` most frequent words, keeping the round
    with the best criterion and stopping at the first round that does not raise it. ``fit``
    runs it from ``restarts`` starts (seeds ``seed, seed+1, ...``;
    for ``init="similarity"`` restart ``r`` also uses ``similarity_vocab[r % len]`` words, since
    how many words the similarity distributions may use before they stop being comparable
    differs between language pairs) and keeps the start with the best criterion.

    ``converged_`` comes from :func:`~mapalign.unsupervised.criterion.convergence_test`:
    ``null_draws`` random starts go through the same procedure and the run must beat the best
    of them by ``margin``. With ``early_stop`` the starts stop once two of them have found one
    solution (translating most criterion words alike) that passes.

    Procedures run ``n_jobs`` at a time (default: one per CPU core, one on a GPU); each has its
    own seeds, so ``n_jobs`` changes the time and no number. ``adversarial`` is the schedule of
    ``init="adversarial"``: ``"auto"`` (``cpu`` on a CPU, ``paper`` on a GPU), a name in
    :data:`~mapalign.unsupervised.adversarial.SCHEDULES` or an
    :class:`~mapalign.unsupervised.adversarial.AdversarialSchedule`.
    """

    def __init__(self, init="similarity", refine=5, restarts=3, seed=0,
                 normalize="unit,center,unit", device="cpu", csls_k=10, refine_vocab=15000,
                 criterion_vocab=10000, null_draws=2, margin=0.03,
                 similarity_vocab=(1000, 2000, 4000), self_learning=True, final="multistep",
                 final_induction="mutual", early_stop=True, self_learning_vocab=20000,
                 keep_prob=0.1, keep_multiplier=2.0, keep_interval=5,
                 self_learning_threshold=1e-3, adversarial="auto", n_jobs=None):
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def _validate(self):
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, not {self.init!r}")
        if self.restarts < 1 or self.null_draws < 0 or self.refine < 0:
            raise ValueError("restarts must be >= 1, null_draws and refine >= 0")
        if self.final not in ("multistep", "procrustes"):
            raise ValueError(f"final must be 'multistep' or 'procrustes', not {self.final!r}")
        if not 0 < self.keep_prob <= 1:
            raise ValueError("keep_prob must be in (0, 1]")
        if self.n_jobs is not None and self.n_jobs < 1:
            raise ValueError("n_jobs must be >= 1 (or None: one per CPU core)")
        schedule_of(self.adversarial)

    def _workers(self, xp) -> int:
        """Procedures run at once: one per CPU core (their element-wise passes are
        single-threaded), one on a GPU."""
        if self.n_jobs is not None:
            return int(self.n_jobs)
        return _cores() if xp is np else 1

    def fit(self, src: Embeddings, tgt: Embeddings, progress=None):
        self._validate()
        t0 = time.perf_counter()
        log = progress or (lambda msg: None)
        xp, X, Z = self._prepare(src, tgt)
        if src.dim != tgt.dim:
            raise ValueError(f"unsupervised mapping is orthogonal and needs equal dimensions: "
                             f"source {src.dim}, target {tgt.dim}; reduce one side (e.g. PCA) "
                             "or fit with a dictionary")
        self.adversarial_schedule_ = schedule_of(self.adversarial, xp)
        eye = xp.eye(Z.shape[1], dtype=xp.float32)
        n_crit, n_ref = self.criterion_vocab, self.refine_vocab
        abandon = threading.Event()  # set when the fit ends early (an error, Ctrl-C)

        def solve(Xs, Zs):
            if abandon.is_set():
                raise _Abandoned
            return procrustes(Xs, Zs), eye

        def scores(W_src, W_tgt):
            """``(criterion, translations)`` of a mapping."""
            return criterion_and_translations(X[:n_crit] @ W_src, Z[:n_ref] @ W_tgt, n_crit,
                                              self.csls_k)

        def crit(W_src, W_tgt):
            return scores(W_src, W_tgt)[0]

        sl_opts = RefineOptions(rounds=self.keep_interval, vocab=self.self_learning_vocab,
                                csls_k=self.csls_k, induction="union", keep=self.keep_prob,
                                keep_multiplier=self.keep_multiplier,
                                patience=self.keep_interval,
                                threshold=self.self_learning_threshold)
        final_opts = RefineOptions(rounds=self.refine, vocab=self.refine_vocab,
                                   csls_k=self.csls_k, induction="mutual",
                                   stop_when_repeated=False, stop_when_no_gain=True)

        def procedure(entry, rng, say, rows=None, W=None):
            """A start -> a mapping, its criterion and translations."""
            if self.self_learning:
                t = time.perf_counter()
                W_src, W_tgt, hist = refine(X, Z, solve, sl_opts, rows=rows, W=W, rng=rng,
                                            log=say)
                entry["self_learning"] = {"rounds": len(hist), "objective": hist[-1]
                                          ["objective"], "seconds": time.perf_counter() - t}
                rows, W = None, (W_src, W_tgt)
            scored = []  # (W_src, criterion, translations) of every mapping refine scores

            def scored_crit(W_src, W_tgt):
                scored.append((W_src, *scores(W_src, W_tgt)))
                return scored[-1][1]

            W_src, W_tgt, hist = refine(X, Z, solve, final_opts, rows=rows, W=W,
                                        criterion=scored_crit,
                                        criterion_name="mean translation cosine", log=say)
            entry["refinement"] = hist
            _, c, trans = next(s for s in scored if s[0] is W_src)  # the mapping kept
            entry["criterion"] = c
            return W_src, c, trans

        if self.init in ("identical", "numerals"):  # fails at once, before any long work
            identical_dictionary(src.words, tgt.index, xp, self.init == "numerals")

        n0 = min(max(self._similarity_vocabs()), len(X), len(Z))

        def null_draw(d):
            """A random start through the same procedure: the null the run must beat."""
            seed = self.seed + _NULL_SEED_STRIDE * (d + 1)
            name = f"null draw {d + 1}/{self.null_draws}"
            entry = {"seed": seed, "start": f"random dictionary over {n0} words"}
            t = time.perf_counter()
            rows = random_dictionary(n0, n0, np.random.default_rng(seed), xp)
            _, c, trans = procedure(entry, default_rng(xp, seed), _labelled(log, name),
                                    rows=rows)
            entry["seconds"] = time.perf_counter() - t
            log(f"{name} (random start): mean translation cosine {c:.4f}")
            return entry, c, trans

        def start(r):
            seed = self.seed + r
            name = f"restart {r + 1}/{self.restarts} (seed {seed})"
            say = _labelled(log, name)
            entry = {"seed": seed}
            t = time.perf_counter()
            log(f"{name}: {self.init} initialisation")
            rows, W0 = self._initial(X, Z, src, tgt, r, np.random.default_rng(seed), crit,
                                     entry, say)
            W, c, trans = procedure(entry, default_rng(xp, seed), say, rows, W0)
            entry["seconds"] = time.perf_counter() - t
            log(f"{name}: mean translation cosine {c:.4f}")
            return entry, W, c, trans

        # Every procedure has its own seeds, so running them at once changes no number. The
        # null draws and the starts that are certainly needed go first; with ``early_stop``
        # each later start is submitted only once the starts before it have not settled the
        # run (two of them found one solution that passes the test): no start is run for
        # nothing.
        needed = 2 if self.early_stop and self.null_draws else self.restarts
        # no more threads than procedures that can run at once: the BLAS threads are shared
        # among the workers, so an idle worker would leave cores unused
        self.n_jobs_ = workers = min(self._workers(xp),
                                     self.null_draws + min(needed, self.restarts))
        with _blas_threads(workers, xp) as limits, \
                ThreadPoolExecutor(workers, thread_name_prefix="mapalign") as pool:
            try:
                nulls = [pool.submit(null_draw, d) for d in range(self.null_draws)]
                starts = [pool.submit(start, r) for r in range(min(needed, self.restarts))]
                null, self.null_draws_ = [], []
                for f in nulls:
                    entry, c, trans = f.result()
                    null.append((c, trans))
                    self.null_draws_.append(entry)
                self.restarts_, found = [], []  # found: (W, criterion, translations, seed)
                self.stopped_early_ = False
                r = 0
                while r < len(starts):
                    entry, W, c, trans = starts[r].result()
                    self.restarts_.append(entry)
                    found.append((W, c, trans, entry["seed"]))
                    if self._settled(found, null, xp):
                        self.stopped_early_ = r + 1 < self.restarts
                        if self.stopped_early_:
                            log(f"restart {r + 1}: two starts found the same solution; "
                                "skipping the remaining starts")
                        break
                    if r + 1 == len(starts) < self.restarts:
                        if limits is not None:  # nothing else runs now: every BLAS thread
                            limits.restore_original_limits()
                        starts.append(pool.submit(start, len(starts)))
                    r += 1
            finally:
                abandon.set()  # anything still running (after an error) stops at its next round
                for f in nulls + starts:
                    f.cancel()
        W, self.criterion_, trans, self.best_seed_ = max(found, key=lambda f: f[1])
        self.convergence_ = convergence_test(self.criterion_, trans, null, self.margin)
        for entry, test in zip(self.null_draws_, self.convergence_["null"]):
            entry.update(agreement=test["agreement"], same_solution=test["same_solution"])
        self.converged_ = self.convergence_["converged"]
        W_tgt = eye
        if self.final == "multistep":
            # the final step of Artetxe et al. (2018): the multi-step framework solved once on
            # the dictionary the selected orthogonal mapping induces
            n_s, n_t = min(self.refine_vocab, len(X)), min(self.refine_vocab, len(Z))
            i, j, _ = induce(X[:n_s] @ W, Z[:n_t], RefineOptions(
                csls_k=self.csls_k, induction=self.final_induction))
            W, W_tgt = MULTISTEP(X[i], Z[j])
            self.final_pairs_ = int(len(i))
        self._store(W, W_tgt)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _settled(self, found, null, xp) -> bool:
        """With ``early_stop``: two starts found one solution (translating most criterion
        words alike) and it passes the convergence test."""
        if not (self.early_stop and null and len(found) > 1):
            return False
        best = max(found, key=lambda f: f[1])
        if not convergence_test(best[1], best[2], null, self.margin)["converged"]:
            return False
        return max(float(xp.mean(f[2] == best[2])) for f in found if f is not best) >= 0.5

    def _similarity_vocabs(self):
        v = self.similarity_vocab
        return [int(v)] if np.isscalar(v) else [int(x) for x in v]

    def _initial(self, X, Z, src, tgt, r, rng, crit, entry, log):
        """``(rows, W)``: an initial dictionary or an initial mapping (the other is None)."""
        from ..backend import get_array_module

        xp = get_array_module(X)
        if self.init == "similarity":
            vocab = self._similarity_vocabs()[r % len(self._similarity_vocabs())]
            entry["similarity_vocab"] = vocab
            rows = similarity_dictionary(X, Z, vocab, self.csls_k)
            entry["initial_pairs"] = int(len(rows[0]))
            return rows, None
        if self.init == "adversarial":
            W, entry["adversarial"] = adversarial_init(
                X, Z, rng, self.adversarial_schedule_,
                criterion=lambda W: crit(W, xp.eye(Z.shape[1], dtype=xp.float32)), log=log)
            return None, (W, xp.eye(Z.shape[1], dtype=xp.float32))
        rows = identical_dictionary(src.words, tgt.index, xp, self.init == "numerals")
        entry["seed_pairs"] = int(len(rows[0]))
        return rows, None

    def report_(self) -> dict:
        return {"unsupervised": {"criterion": self.criterion_, "converged": self.converged_,
                                 "convergence_test": self._test_summary(),
                                 "best_seed": self.best_seed_, "restarts": self.restarts_,
                                 "stopped_early": self.stopped_early_,
                                 "null_draws": self.null_draws_,
                                 "final": {"method": self.final,
                                           "pairs": getattr(self, "final_pairs_", None)},
                                 **({"adversarial_schedule":
                                     self.adversarial_schedule_.settings()}
                                    if self.init == "adversarial" else {})}}

    def _test_summary(self):
        return {k: v for k, v in self.convergence_.items() if k != "null"}
