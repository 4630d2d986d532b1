"""The project's own error types: what the command line reports as one ``Error:`` line.

Bad arguments and bad input are ``ValueError`` (scikit-learn's convention) or ``OSError``;
these name the cases a user can act on."""


class MissingExtraError(RuntimeError):
    """An optional dependency (an extra: gpu, report, dask) is not installed."""

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} needs the '{extra}' extra: from a mapalign checkout, "
                         f"pip install -e '.[{extra}]'")


class SwappedError(ValueError):
    """A dictionary (or vectors file) fits the other language far better than the one it
    was given for: the languages were probably swapped."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` (scikit-learn's
    convention: both a ``ValueError`` and an ``AttributeError``)."""
