"""Adversarial initialisation (Conneau et al., 2018, "Word translation without parallel data"):
a linear map ``W`` (identity start) trained against a discriminator that tells mapped source
vectors from target vectors; after every mapping step ``W`` is pulled back towards orthogonality
(``W <- (1 + beta) W - beta W W^T W``). The epoch with the best unsupervised criterion is kept.

Its settings form one :class:`AdversarialSchedule`; ``SCHEDULES`` names two: ``paper`` (the
schedule of Conneau et al.: 5 epochs of 1,000,000 samples in batches of 32, two hidden layers
of 2048, built for a GPU; the default on a GPU) and ``cpu`` (a fifth of the samples and 512
hidden units; the default on a CPU, where it converges on French-English 300-d vectors).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..backend import default_rng, get_array_module, to_device


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
    return loss, (p - y) / len(y)


@dataclass(frozen=True)
class AdversarialSchedule:
    """Everything adversarial training is told: how long, how big, how fast."""
    epochs: int = 5
    epoch_size: int = 1_000_000  # samples per epoch
    batch: int = 32
    dis_steps: int = 5  # discriminator steps per mapping step
    hidden: int = 2048  # units of each hidden layer
    layers: int = 2
    input_dropout: float = 0.1
    smooth: float = 0.1  # label smoothing
    dis_lr: float = 0.1
    map_lr: float = 0.1
    lr_decay: float = 0.98  # per epoch
    lr_shrink: float = 0.5  # of the mapping's rate when an epoch does not raise the criterion
    min_lr: float = 1e-6
    beta: float = 0.001  # the pull towards orthogonality
    most_frequent: int = 75000  # words each side's samples are drawn from

    def settings(self) -> dict:
        return asdict(self)


SCHEDULES = {"paper": AdversarialSchedule(),
             "cpu": AdversarialSchedule(epoch_size=200_000, hidden=512)}


def schedule_of(value, xp=np) -> AdversarialSchedule:
    """An :class:`AdversarialSchedule` from itself, from a name in ``SCHEDULES``, or from
    ``"auto"``: ``cpu`` where ``xp`` is numpy, ``paper`` on a GPU."""
    if isinstance(value, AdversarialSchedule):
        return value
    if value == "auto":
        value = "cpu" if xp is np else "paper"
    if value not in SCHEDULES:
        raise ValueError(f"adversarial schedule must be 'auto', one of {tuple(SCHEDULES)} or "
                         f"an AdversarialSchedule, not {value!r}")
    return SCHEDULES[value]


def adversarial_init(X, Z, rng, schedule=SCHEDULES["paper"], criterion=None, log=None):
    """Train ``W`` (``X @ W`` ~ target space) against a discriminator under ``schedule``
    (an :class:`AdversarialSchedule` or a name in ``SCHEDULES``); returns the ``W`` of the
    epoch with the best ``criterion(W)`` and the per-epoch history. ``rng`` is a host
    generator that seeds the discriminator and the device generator of the training steps;
    losses and accuracies are summed on the device and read once per epoch."""
    s = schedule_of(schedule)
    epochs, batch, dis_steps, input_dropout = s.epochs, s.batch, s.dis_steps, s.input_dropout
    dis_lr, map_lr, min_lr = s.dis_lr, s.map_lr, s.min_lr
    xp = get_array_module(X)
    d = X.shape[1]
    W = xp.eye(d, Z.shape[1], dtype=xp.float32)
    dis = _Discriminator(d, s.hidden, s.layers, xp, rng)
    # every per-step random draw happens on the device: no host->device copy in the loop
    dev_rng = default_rng(xp, int(rng.integers(2 ** 31)))
    n_x, n_z = min(s.most_frequent, len(X)), min(s.most_frequent, len(Z))
    y = xp.concatenate([xp.full(batch, 1 - s.smooth),
                        xp.full(batch, s.smooth)]).astype(xp.float32)
    best_W, best_c, history = W.copy(), -np.inf, []
    steps = max(1, s.epoch_size // batch)
    shown = time.perf_counter()
    for epoch in range(epochs):
        loss_sum, correct, seen = 0.0, 0.0, 0  # device scalars, read once per epoch
        for step in range(steps):
            if log and time.perf_counter() - shown > 5:  # a clock read: no device sync
                log(f"adversarial: epoch {epoch + 1}/{epochs}, step {step}/{steps}")
                shown = time.perf_counter()
            for _ in range(dis_steps):
                xb = X[dev_rng.integers(0, n_x, batch)] @ W
                zb = Z[dev_rng.integers(0, n_z, batch)]
                inp = xp.concatenate([xb, zb])
                if input_dropout:
                    keep = dev_rng.random(inp.shape, dtype=xp.float32) >= input_dropout
                    inp = inp * keep / (1 - input_dropout)
                logit = dis.forward(inp)
                loss, g = _bce_grad(logit, y)
                correct = correct + xp.sum((logit > 0) == (y > 0.5))
                seen += len(y)
                grads, _ = dis.backward(g)
                dis.step(grads, dis_lr)
                loss_sum = loss_sum + loss
            # the mapping tries to make the discriminator call mapped source "target"
            xs = X[dev_rng.integers(0, n_x, batch)]
            _, g = _bce_grad(dis.forward(xs @ W), 1 - y[:batch])
            _, g_in = dis.backward(g)
            W -= map_lr * (xs.T @ g_in)
            W = (1 + s.beta) * W - s.beta * (W @ W.T) @ W
        c = criterion(W) if criterion else float("nan")
        dis_loss, dis_acc = float(loss_sum) / max(1, seen // len(y)), float(correct) / max(1, seen)
        history.append({"epoch": epoch + 1, "dis_loss": dis_loss, "dis_accuracy": dis_acc,
                        "criterion": c,
                        "dis_lr": dis_lr, "map_lr": map_lr})
        if log:
            log(f"adversarial: epoch {epoch + 1}, discriminator loss {dis_loss:.4f}, "
                f"accuracy {dis_acc:.3f}, criterion {c:.4f}")
        if c > best_c:
            best_W, best_c = W.copy(), c
        elif map_lr * s.lr_shrink >= min_lr:  # plateau of the criterion: shrink
            map_lr *= s.lr_shrink
        dis_lr, map_lr = max(min_lr, dis_lr * s.lr_decay), max(min_lr, map_lr * s.lr_decay)
    return best_W, history
