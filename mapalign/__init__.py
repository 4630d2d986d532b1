"""mapalign: map the word vectors of two languages into one shared space, and measure it.

A notebook needs no command line::

    import mapalign as ma
    src = ma.load_embeddings("es.vec", max_vocab=200000)
    tgt = ma.load_embeddings("en.vec", max_vocab=200000)
    model = ma.SupervisedAligner(method="procrustes").fit(src, tgt, ma.load_dictionary("train.txt"))
    ma.evaluate_bdi(model, src, tgt, ma.load_dictionary("test.txt"))
    ma.evaluate_unsupervised(model, src, tgt)   # no test dictionary: criterion vs reference
"""
__version__ = "0.1.0"

from .errors import NotFittedError  # noqa: E402
from .evaluation import evaluate_bdi, precision_at_k  # noqa: E402
from .loading import Embeddings, FormatError, load_dictionary, load_embeddings  # noqa: E402
from .mapping import Mapping, SupervisedAligner, cca, load, procrustes  # noqa: E402
from .multi import MultiAligner  # noqa: E402
from .quality import evaluate_unsupervised  # noqa: E402
from .retrieval import mean_topk_similarity, mutual_nearest, nearest  # noqa: E402
from .semi_supervised import SemiSupervisedAligner  # noqa: E402
from .unsupervised import UnsupervisedAligner  # noqa: E402

__all__ = ["Embeddings", "FormatError", "Mapping", "MultiAligner", "NotFittedError",
           "SemiSupervisedAligner", "SupervisedAligner",
           "UnsupervisedAligner",
           "cca", "evaluate_bdi", "evaluate_unsupervised", "load", "load_dictionary", "load_embeddings",
           "mean_topk_similarity", "mutual_nearest", "nearest", "precision_at_k", "procrustes"]
