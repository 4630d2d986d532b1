"""The unsupervised model-selection criterion and the test that decides whether a run found an
alignment at all.

Criterion (Conneau et al., 2018): the mean cosine between the ``n`` most frequent mapped source
words and their CSLS best translations.

Convergence test: a collapsed run is a local optimum of the same procedure, so the level a run
must beat is what the *same procedure* reaches from starts that carry no information: random
initial dictionaries, followed by the same self-learning and refinement (``null`` draws). A run
converges when its criterion exceeds the best null draw by ``margin``. A null draw that reaches
the run's own solution (most criterion words translated alike) is no evidence against it and is
left out of that maximum; both its value and its agreement are reported. With no null draw
the result is ``None``: not tested.

The margin (0.03 by default) is set from what the procedure does on real pairs: collapsed
runs land within 0.01 of the best random start (zh-en: 0.636 against 0.628), successful ones
0.1 to 0.18 above it (zh-en 0.735, es-en 0.816 against 0.639).
"""
from __future__ import annotations

from ..backend import get_array_module
from ..normalize import unit_rows
from ..retrieval import DEFAULT_BUDGET, csls_best


def criterion_and_translations(S, T, n: int = 10000, csls_k: int = 10, budget=DEFAULT_BUDGET):
    """``(criterion, translations)``: the mean cosine between the first ``n`` rows of ``S`` and
    their CSLS best rows of ``T`` (a float), and those rows' indices (device array)."""
    xp = get_array_module(S, T)
    Q, Tn = unit_rows(S[:n]), unit_rows(T)
    fwd = csls_best(Q, Tn, csls_k, budget)
    return float(xp.mean(xp.sum(Q * Tn[fwd], axis=1))), fwd


def mean_cosine_criterion(S, T, n: int = 10000, csls_k: int = 10, budget=DEFAULT_BUDGET) -> float:
    """The criterion alone (see :func:`criterion_and_translations`)."""
    return criterion_and_translations(S, T, n, csls_k, budget)[0]


def convergence_test(criterion: float, translations, null: list, margin: float,
                     same_solution: float = 0.5) -> dict:
    """Decide convergence from the run's criterion and translations and the null draws
    ``[(criterion, translations), ...]``."""
    xp = get_array_module(translations)
    draws = []
    for c, t in null:
        agreement = float(xp.mean(t == translations))
        draws.append({"criterion": c, "agreement": agreement,
                      "same_solution": agreement >= same_solution})
    others = [d["criterion"] for d in draws if not d["same_solution"]]
    level = max(others) if others else None
    if not null:
        converged = None  # no test was run
    else:
        converged = level is None or criterion > level + margin
    return {"criterion": criterion, "null": draws, "null_level": level, "margin": margin,
            "converged": None if converged is None else bool(converged)}
