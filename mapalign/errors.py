"""The project's own error types: what the command line reports as one ``Error:`` line, and
how a message names an option.

Bad arguments and bad input are ``ValueError`` (scikit-learn's convention) or ``OSError``;
these name the cases a user can act on.

A message that tells the user how to go on names an option through :func:`option`: the
Python keyword (``allow_swapped=True``) by default, the command's flag (``--no-swap-check``)
once the command line has called :func:`use_cli_flags`. The library's messages hold no flag
of their own (a test scans its source for them)."""
from __future__ import annotations

import contextvars
from typing import Optional

# {keyword: flag} of the command being run; None outside the command line
_CLI_FLAGS: contextvars.ContextVar = contextvars.ContextVar("mapalign_cli_flags", default=None)


def use_cli_flags(ctx) -> None:
    """Called once by the command line's group with its click context: from then on, until
    the command's context closes, :func:`option` names the flags of the command being run
    (those of every command for a keyword it does not take)."""
    group = ctx.command
    flags = {}
    for cmd in [c for name, c in sorted(group.commands.items())
                if name != ctx.invoked_subcommand] + \
            [group.commands.get(ctx.invoked_subcommand)]:  # the command's own flags last: win
        for p in getattr(cmd, "params", ()):
            long = [o for o in getattr(p, "opts", ()) if o.startswith("--")]
            if getattr(p, "param_type_name", "") == "option" and long:
                flags[p.name] = long[0]
    token = _CLI_FLAGS.set(flags)

    def restore():
        try:
            _CLI_FLAGS.reset(token)
        except ValueError:  # another context: forget the flags all the same
            _CLI_FLAGS.set(None)
    ctx.call_on_close(restore)


def in_cli() -> bool:
    """Whether the library runs under the command line (see :func:`use_cli_flags`)."""
    return _CLI_FLAGS.get() is not None


def option(keyword: str, value=True, python: Optional[str] = None) -> str:
    """How a message names the setting ``keyword=value``: ``keyword=value`` in Python (or
    ``python``, where the Python side spells it otherwise), the command's flag on the command
    line (``--flag`` for ``True``, ``--flag value`` otherwise)."""
    flags = _CLI_FLAGS.get()
    if flags is None:
        return python if python is not None else f"{keyword}={value!r}"
    flag = flags.get(keyword) or "-" * 2 + keyword.replace("_", "-")
    return flag if value is True else f"{flag} {value}"


class MissingExtraError(RuntimeError):
    """An optional dependency (an extra: gpu, report, dask) is not installed."""

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} needs the '{extra}' extra: from a mapalign checkout, "
                         f"pip install -e '.[{extra}]'")


class InputMismatchError(ValueError):
    """A user's file shares (almost) nothing with what it is used with (a run's or a fit's
    vocabularies): a file of other languages, or of the wrong side."""


class SwappedError(InputMismatchError):
    """A dictionary (or vectors file) fits the other language far better than the one it
    was given for: the languages were probably swapped."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` (scikit-learn's
    convention: both a ``ValueError`` and an ``AttributeError``)."""
