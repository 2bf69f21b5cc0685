"""Exception and warning types. User errors (bad sweep files, bad arguments) are SpecError: the CLI
prints them as one line and exits 2."""


class CusweepError(Exception):
    """Base class of every error cusweep raises on purpose."""


class SpecError(CusweepError, ValueError):
    """A user input (sweep file, command-line argument, query) is wrong; the message says which key,
    which value, the allowed range and what to do."""


class StoreError(CusweepError):
    """A store cannot be created, opened, locked or written; the message names the store (and block)."""


class QueryError(SpecError):
    """A query expression cannot be parsed or names something the store does not have."""


class PhysicsWarning(UserWarning):
    """A physics assumption is stretched (e.g. a model used outside its validity)."""


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """``Type: message`` of an exception on one line (whitespace folded, at most ``limit`` characters),
    for one-line CLI errors."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]
