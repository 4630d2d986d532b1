"""Unsupervised mapping: an initial mapping found without a dictionary, then Procrustes
refinement on dictionaries induced with CSLS, chosen by an unsupervised criterion.

Initialisations (``init``):

* ``adversarial`` — Conneau et al. (2018): a linear map ``W`` (identity start) trained against
  a discriminator that tells mapped source vectors from target vectors; ``W`` is kept close
  to orthogonal after every step.
* ``similarity`` — Artetxe, Labaka & Agirre (2018, ACL): each word is described by its sorted
  similarities to the other frequent words of its own language, a description that a rotation
  leaves unchanged; nearest neighbours between these descriptions give an initial dictionary,
  improved by self-learning with stochastic dictionary induction.
* ``identical`` / ``numerals`` — semi-supervised seeds: identically spelled words, or the
  identically spelled words made only of digits.

Model selection: the mean cosine between the ``criterion_vocab`` most frequent mapped source
words and their CSLS translations (Conneau et al., 2018).
"""
from __future__ import annotations

import math
import time

import numpy as np

from .backend import asnumpy, get_array_module, to_device
from .loading import Embeddings
from .mapping import Mapping, procrustes
from .normalize import normalize, unit_rows
from .retrieval import (DEFAULT_BUDGET, _blocks, block_rows, csls_block, mean_topk_similarity,
                        mutual_nearest, nearest)

INITS = ("adversarial", "similarity", "identical", "numerals")


def mean_cosine_criterion(S, T, n: int = 10000, csls_k: int = 10, budget=DEFAULT_BUDGET) -> float:
    """Mean cosine between the first ``n`` rows of ``S`` and their CSLS best match in ``T``
    (CSLS penalties of the targets from the first ``n`` rows of ``S``)."""
    xp = get_array_module(S, T)
    Q = unit_rows(S[:n])
    Tn = unit_rows(T)
    idx, _ = nearest(Q, Tn, 1, "csls", csls_k, sources=Q, budget=budget)
    return float(xp.mean(xp.sum(Q * Tn[to_device(idx[:, 0], xp)], axis=1)))


def random_baseline(X, Z, n=10000, trials=3, seed=0, csls_k=10) -> float:
    """The criterion of random rotations: the level a mapping must clearly beat."""
    xp = get_array_module(X)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(trials):
        R = np.linalg.qr(rng.standard_normal((X.shape[1], Z.shape[1])))[0].astype(np.float32)
        vals.append(mean_cosine_criterion(X[:n] @ to_device(R, xp), Z[:n], n, csls_k))
    return float(np.mean(vals))


# ----------------------------------------------------------------------------- similarity
def _similarity_signature(X):
    """Rows of sqrt(X X^T) (= U S U^T for X = U S V^T), each sorted, then unit,center,unit."""
    xp = get_array_module(X)
    U, s, _ = xp.linalg.svd(X.astype(xp.float64), full_matrices=False)
    M = (U * s) @ U.T
    M = -xp.sort(-M, axis=1)
    return normalize(M.astype(xp.float32), "unit,center,unit")[0]


def _stochastic_best(S, T, keep: float, rng, csls_k: int, budget=DEFAULT_BUDGET):
    """For each row of S its CSLS-best row of T after each score is dropped with probability
    1 - keep (Artetxe et al., 2018, stochastic dictionary induction). Returns numpy arrays
    ``(best index, best score)``."""
    xp = get_array_module(S, T)
    m = T.shape[0]
    k = min(csls_k, m)
    r_t = mean_topk_similarity(T, S, csls_k, budget)
    best = np.empty(S.shape[0], dtype=np.int64)
    score = np.empty(S.shape[0], dtype=np.float32)
    for a, b in _blocks(S.shape[0], block_rows(m, budget)):
        sims = csls_block(S[a:b] @ T.T, r_t, k)
        if keep < 1:
            drop = to_device(rng.random(sims.shape, dtype=np.float32) >= keep, xp)
            sims[drop] = -np.inf
        j = sims.argmax(axis=1)
        best[a:b] = asnumpy(j)
        score[a:b] = asnumpy(xp.take_along_axis(sims, j[:, None], axis=1)[:, 0])
    return best, score


def _self_learning(X, Z, src_rows, tgt_rows, vocab, rng, csls_k, keep=0.1, multiplier=2.0,
                   interval=50, threshold=1e-6, max_iter=1000, log=None):
    """Alternate Procrustes and stochastic bidirectional dictionary induction among the first
    ``vocab`` words until the keep probability reaches 1 and the objective stops improving."""
    xp = get_array_module(X)
    Xv, Zv = X[:vocab[0]], Z[:vocab[1]]
    best_obj, last_gain, it = -np.inf, 0, 0
    W = procrustes(X[to_device(src_rows, xp)], Z[to_device(tgt_rows, xp)])
    while it < max_iter:
        it += 1
        S = Xv @ W
        fwd, fwd_s = _stochastic_best(S, Zv, keep, rng, csls_k)
        bwd, bwd_s = _stochastic_best(Zv, S, keep, rng, csls_k)
        src_rows = np.concatenate([np.arange(len(fwd)), bwd])
        tgt_rows = np.concatenate([fwd, np.arange(len(bwd))])
        obj = float((fwd_s.mean() + bwd_s.mean()) / 2)
        if obj - best_obj > threshold:
            best_obj, last_gain = obj, it
        if it - last_gain >= interval:
            if keep >= 1:
                break
            keep, last_gain = min(1.0, keep * multiplier), it
            if log:
                log(f"self-learning: iteration {it}, objective {obj:.4f}, keep {keep:.2f}")
        W = procrustes(X[to_device(src_rows, xp)], Z[to_device(tgt_rows, xp)])
    return W, it


# ---------------------------------------------------------------------------- adversarial
class _Discriminator:
    """A small MLP in plain array code: forward, backward, SGD. LeakyReLU hidden layers,
    dropout on the input, one logit out."""

    def __init__(self, dim, hidden, layers, xp, rng):
        self.xp = xp
        sizes = [dim] + [hidden] * layers + [1]
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(fan_in)
            W = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
            b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
            self.params.append([to_device(W, xp), to_device(b, xp)])

    def forward(self, x):
        self.acts = [x]
        for i, (W, b) in enumerate(self.params):
            z = x @ W + b
            if i < len(self.params) - 1:
                self.acts.append(z)
                x = self.xp.where(z > 0, z, 0.2 * z)
            else:
                x = z
        return x[:, 0]

    def backward(self, grad_logit):
        """Gradients of the parameters, and of the input, given d loss / d logit."""
        xp = self.xp
        g = grad_logit[:, None]
        grads = [None] * len(self.params)
        for i in range(len(self.params) - 1, -1, -1):
            W, _ = self.params[i]
            inp = self.acts[i] if i == 0 else xp.where(self.acts[i] > 0, self.acts[i],
                                                          0.2 * self.acts[i])
            grads[i] = (inp.T @ g, g.sum(axis=0))
            g = g @ W.T
            if i > 0:
                g = g * xp.where(self.acts[i] > 0, 1.0, 0.2).astype(g.dtype)
        return grads, g

    def step(self, grads, lr):
        for (W, b), (gW, gb) in zip(self.params, grads):
            W -= lr * gW
            b -= lr * gb


def _bce_grad(logit, y):
    """Mean binary cross-entropy of sigmoid(logit) against y, and its gradient in the logit."""
    xp = get_array_module(logit)
    p = 1 / (1 + xp.exp(-logit))
    loss = -xp.mean(y * xp.log(p + 1e-12) + (1 - y) * xp.log(1 - p + 1e-12))
    return float(loss), (p - y) / len(y)


def adversarial_init(X, Z, rng, epochs=5, epoch_size=1_000_000, batch=32, dis_steps=5,
                     hidden=2048, layers=2, input_dropout=0.1, smooth=0.1, dis_lr=0.1,
                     map_lr=0.1, lr_decay=0.98, lr_shrink=0.5, min_lr=1e-6, beta=0.001,
                     most_frequent=75000, criterion=None, log=None):
    """Train ``W`` (``X @ W`` ~ target space) against a discriminator; returns the ``W`` of the
    epoch with the best ``criterion(W)`` and the per-epoch history."""
    xp = get_array_module(X)
    d = X.shape[1]
    W = xp.eye(d, Z.shape[1], dtype=xp.float32)
    dis = _Discriminator(d, hidden, layers, xp, rng)
    n_x, n_z = min(most_frequent, len(X)), min(most_frequent, len(Z))
    y = xp.concatenate([xp.full(batch, 1 - smooth), xp.full(batch, smooth)]).astype(xp.float32)
    best_W, best_c, history = W.copy(), -np.inf, []
    for epoch in range(epochs):
        losses = []
        for _ in range(max(1, epoch_size // batch)):
            for _ in range(dis_steps):
                xb = X[to_device(rng.integers(0, n_x, batch), xp)] @ W
                zb = Z[to_device(rng.integers(0, n_z, batch), xp)]
                inp = xp.concatenate([xb, zb])
                if input_dropout:
                    keep = to_device(rng.random(inp.shape, dtype=np.float32) >= input_dropout, xp)
                    inp = inp * keep / (1 - input_dropout)
                loss, g = _bce_grad(dis.forward(inp), y)
                grads, _ = dis.backward(g)
                dis.step(grads, dis_lr)
                losses.append(loss)
            # the mapping tries to make the discriminator call mapped source "target"
            xs = X[to_device(rng.integers(0, n_x, batch), xp)]
            _, g = _bce_grad(dis.forward(xs @ W), 1 - y[:batch])
            _, g_in = dis.backward(g)
            W -= map_lr * (xs.T @ g_in)
            W = (1 + beta) * W - beta * (W @ W.T) @ W
        c = criterion(W) if criterion else float("nan")
        history.append({"epoch": epoch + 1, "dis_loss": float(np.mean(losses)), "criterion": c,
                        "dis_lr": dis_lr, "map_lr": map_lr})
        if log:
            log(f"adversarial: epoch {epoch + 1}, discriminator loss {np.mean(losses):.4f}, "
                f"criterion {c:.4f}")
        if c > best_c:
            best_W, best_c = W.copy(), c
        elif map_lr * lr_shrink >= min_lr:  # plateau of the criterion: shrink
            map_lr *= lr_shrink
        dis_lr, map_lr = max(min_lr, dis_lr * lr_decay), max(min_lr, map_lr * lr_decay)
    return best_W, history


# ------------------------------------------------------------------------------ the aligner
class UnsupervisedAligner(Mapping):
    """Learn an orthogonal mapping with no dictionary.

    ``fit`` runs ``restarts`` times with seeds ``seed, seed+1, ...``: initialisation, then
    ``refine`` Procrustes iterations on mutual CSLS nearest neighbours among the
    ``refine_vocab`` most frequent words, keeping the iteration with the best criterion; the
    restart with the best criterion wins. ``converged_`` says whether the criterion clearly
    beats that of random rotations (by ``margin``, relative).
    """

    def __init__(self, init="similarity", refine=5, restarts=1, seed=0,
                 normalize="unit,center,unit", device="cpu", csls_k=10, refine_vocab=15000,
                 criterion_vocab=10000, margin=0.25, similarity_vocab=4000,
                 self_learning_vocab=20000, keep_prob=0.1, keep_multiplier=2.0,
                 keep_interval=10, adv_epochs=5, adv_epoch_size=1_000_000, adv_batch=32,
                 adv_dis_steps=5, adv_hidden=2048, adv_layers=2, adv_input_dropout=0.1,
                 adv_smooth=0.1, adv_dis_lr=0.1, adv_map_lr=0.1, adv_lr_decay=0.98,
                 adv_lr_shrink=0.5, adv_beta=0.001, adv_most_frequent=75000):
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, not {init!r}")
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def get_params(self) -> dict:
        import inspect

        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {n: getattr(self, n) for n in names if n not in ("normalize", "device")}

    def fit(self, src: Embeddings, tgt: Embeddings, progress=None):
        t0 = time.perf_counter()
        xp, X, Z = self._prepare(src, tgt)
        crit = lambda W: mean_cosine_criterion(  # noqa: E731
            X[:self.criterion_vocab] @ W, Z[:self.refine_vocab], self.criterion_vocab,
            self.csls_k)
        self.baseline_ = random_baseline(X, Z, self.criterion_vocab, seed=self.seed,
                                         csls_k=self.csls_k)
        self.restarts_ = []
        best = None
        for r in range(self.restarts):
            seed = self.seed + r
            rng = np.random.default_rng(seed)
            entry = {"seed": seed}
            W0 = self._initial(X, Z, src, tgt, rng, crit, entry, progress)
            entry["criterion_init"] = crit(W0)
            W, c, refine_hist = W0, entry["criterion_init"], []
            n_s, n_t = min(self.refine_vocab, len(X)), min(self.refine_vocab, len(Z))
            W_it = W0
            for it in range(self.refine):
                i, j, _ = mutual_nearest(X[:n_s] @ W_it, Z[:n_t], "csls", self.csls_k)
                W_it = procrustes(X[to_device(i, xp)], Z[to_device(j, xp)])
                c_it = crit(W_it)
                refine_hist.append({"iteration": it + 1, "pairs": int(len(i)),
                                    "criterion": c_it})
                if c_it > c:
                    W, c = W_it, c_it
            entry.update(refinement=refine_hist, criterion=c)
            self.restarts_.append(entry)
            if progress:
                progress(f"restart {r + 1}/{self.restarts} (seed {seed}): criterion {c:.4f} "
                         f"(random rotations: {self.baseline_:.4f})")
            if best is None or c > best[1]:
                best = (W, c, seed)
        W, self.criterion_, self.best_seed_ = best
        self.converged_ = bool(self.criterion_ > self.baseline_ * (1 + self.margin))
        self._store(W, xp.eye(Z.shape[1], dtype=xp.float32))
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _initial(self, X, Z, src, tgt, rng, crit, entry, log):
        xp = get_array_module(X)
        if self.init == "adversarial":
            W, entry["adversarial"] = adversarial_init(
                X, Z, rng, self.adv_epochs, self.adv_epoch_size, self.adv_batch,
                self.adv_dis_steps, self.adv_hidden, self.adv_layers, self.adv_input_dropout,
                self.adv_smooth, self.adv_dis_lr, self.adv_map_lr, self.adv_lr_decay,
                self.adv_lr_shrink, beta=self.adv_beta, most_frequent=self.adv_most_frequent,
                criterion=crit, log=log)
            return W
        if self.init == "similarity":
            n_s, n_t = min(self.similarity_vocab, len(X)), min(self.similarity_vocab, len(Z))
            Sx, Sz = _similarity_signature(X[:n_s]), _similarity_signature(Z[:n_t])
            # the two signatures have one length only when the vocabularies do; cut to the shorter
            n = min(n_s, n_t)
            Sx, Sz = Sx[:, :n], Sz[:, :n]
            fwd, _ = nearest(Sx, Sz, 1, "csls", self.csls_k)
            bwd, _ = nearest(Sz, Sx, 1, "csls", self.csls_k)
            src_rows = np.concatenate([np.arange(n_s), bwd[:, 0]])
            tgt_rows = np.concatenate([fwd[:, 0], np.arange(n_t)])
            vocab = (min(self.self_learning_vocab, len(X)), min(self.self_learning_vocab, len(Z)))
            W, iters = _self_learning(X, Z, src_rows, tgt_rows, vocab, rng, self.csls_k,
                                      self.keep_prob, self.keep_multiplier, self.keep_interval,
                                      log=log)
            entry.update(initial_pairs=int(len(src_rows)), self_learning_iterations=iters)
            return W
        # identical / numerals: seed pairs from identically spelled words
        pairs = [(i, tgt.index[w]) for i, w in enumerate(src.words) if w in tgt.index and
                 (self.init == "identical" or w.isdigit())]
        entry["seed_pairs"] = len(pairs)
        if len(pairs) < 2:
            raise ValueError(f"--init {self.init}: only {len(pairs)} identically spelled "
                             f"{'numerals' if self.init == 'numerals' else 'words'} in the two "
                             "vocabularies; choose another initialisation")
        s, t = np.array(pairs).T
        return procrustes(X[to_device(s, xp)], Z[to_device(t, xp)])

    def report_(self) -> dict:
        return {"unsupervised": {"criterion": self.criterion_, "random_baseline": self.baseline_,
                                 "converged": self.converged_, "best_seed": self.best_seed_,
                                 "restarts": self.restarts_}}
