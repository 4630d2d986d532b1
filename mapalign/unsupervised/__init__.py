"""Unsupervised mapping: initialisations side by side (``similarity``, ``adversarial``,
``identical``, ``numerals``), the shared self-learning and refinement procedure
(:mod:`mapalign.refinement`), and the criterion with its convergence test."""
from .adversarial import adversarial_init
from .aligner import INITS, UnsupervisedAligner
from .criterion import convergence_test, criterion_and_translations, mean_cosine_criterion

__all__ = ["INITS", "UnsupervisedAligner", "adversarial_init", "convergence_test",
           "criterion_and_translations", "mean_cosine_criterion"]
