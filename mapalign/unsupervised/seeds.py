"""Initial dictionaries that need no learning: identically spelled words, numerals, and random
pairs (the starts of the null procedure that a run must beat)."""
from __future__ import annotations

import numpy as np

from ..backend import to_device
from ..errors import option


def identical_dictionary(src_words, tgt_index, xp, numerals_only: bool = False):
    """Rows of the words spelled identically in both vocabularies (only digit strings with
    ``numerals_only``); ValueError when fewer than two exist."""
    pairs = [(i, tgt_index[w]) for i, w in enumerate(src_words)
             if w in tgt_index and (not numerals_only or w.isdigit())]
    if len(pairs) < 2:
        what = "numerals" if numerals_only else "words"
        raise ValueError(f"{option('init', 'numerals' if numerals_only else 'identical')}: only "
                         f"{len(pairs)} identically spelled {what} in the two vocabularies; "
                         "choose another initialisation")
    s, t = np.array(pairs).T
    return to_device(s, xp), to_device(t, xp)


def random_dictionary(n_src: int, n_tgt: int, rng, xp):
    """Every one of the ``n_src`` first source words paired with a random one of the ``n_tgt``
    first target words, and every target word with a random source word: a start with the
    shape of a learnt initial dictionary and none of its information."""
    s = np.concatenate([np.arange(n_src), rng.integers(0, n_src, n_tgt)])
    t = np.concatenate([rng.integers(0, n_tgt, n_src), np.arange(n_tgt)])
    return to_device(s, xp), to_device(t, xp)
