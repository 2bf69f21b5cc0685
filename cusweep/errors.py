"""Exception and warning types. Every error cusweep raises on purpose is a ``CusweepError`` and also the
builtin that says what kind of failure it is, so plain ``except ValueError`` / ``except OSError`` code
works too. The library raises them; only the command line prints them and maps them to exit codes
(2 for bad input: ``SpecError`` and its subclasses; 1 for every other failure)."""


class CusweepError(Exception):
    """Base class of every error cusweep raises on purpose."""


class SpecError(CusweepError, ValueError):
    """A user input (sweep file, argument, selection) is wrong; the message says which key, which value,
    the allowed range and what to do."""


class QueryError(SpecError):
    """A query expression cannot be parsed or names something the store does not have."""


class SelectionError(SpecError, LookupError):
    """A selection (``at=``, a facility preset) names a dim or value the store does not have."""


class StoreError(CusweepError, OSError):
    """A store cannot be created, opened, locked, read or written; the message names the store (and block).

    Raised with one argument (the message), so ``errno``/``strerror`` are None."""


class NotAStoreError(StoreError, SpecError):
    """The path given as a store holds no cusweep store (bad input: exit 2)."""


class NoFeasibleDesign(CusweepError, LookupError):
    """No grid point satisfies the constraints of a search (``best``)."""


class PhysicsWarning(UserWarning):
    """A physics assumption is stretched (e.g. a model used outside its validity)."""


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """``Type: message`` of an exception on one line (whitespace folded, at most ``limit`` characters),
    for one-line CLI errors."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]
