"""Exception and warning types. Every error cusweep raises on purpose is a ``CusweepError`` and also the
builtin that says what kind of failure it is, so plain ``except ValueError`` / ``except OSError`` code
works too. The library raises them; only the command line prints them and maps them to exit codes
(2 for bad input: ``SpecError`` and its subclasses; 1 for every other failure)."""

import re


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


#: longest user text an error line quotes (a longer one is cut, with "…")
EXCERPT = 60
#: longest error line the CLI prints (a longer one is cut, with "…"; after ``shorten`` only lists of
#: valid names come near it)
MAX_LINE = 2000


def excerpt(text: object, limit: int = EXCERPT) -> str:
    """``repr(text)`` of at most about ``limit`` characters: a long text is cut and marked with "…"
    (error lines quote what they refuse, never all of a 10,000-character input)."""
    s = str(text)
    if len(s) <= limit:
        return repr(s)
    head = repr(s[: limit - 1])
    return head[:-1] + "…" + head[-1] + f" ({len(s):,} characters)"


#: a quoted text (as ``repr`` writes it) that starts after a space, a bracket, ``=`` or ``,`` (or at the
#: start) and ends before a space, punctuation or the end: an apostrophe inside a word never opens one
_QUOTED = re.compile(
    r"""(?:(?<=^)|(?<=[\s(\[{=,]))(?P<q>['"])"""  # an opening quote
    r"""(?P<body>(?:[^'"\\]|\\.|(?!(?P=q))['"])"""  # a character, an escape or the other quote
    + f"{{{EXCERPT + 1},}}?"
    + r""")(?P=q)(?=$|[\s;,:.)\]}])"""  # the closing quote
)


def shorten(message: str, limit: int = MAX_LINE) -> str:
    """``message`` with each quoted text longer than ``EXCERPT`` characters cut to an excerpt, whitespace
    folded to one line, and at most ``limit`` characters: the last guard of a one-line CLI error."""
    if len(message) > 200_000:  # never scan a megabyte-long message (a quoted 10 kB query is 10 kB)
        message = message[:200_000]

    def cut(m: re.Match[str]) -> str:
        q, body = m.group("q"), m.group("body")
        if body.endswith("…"):  # an excerpt already
            return m.group()
        return f"{q}{body[: EXCERPT - 1]}…{q} ({len(body):,} characters)"

    text = " ".join(_QUOTED.sub(cut, message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """``Type: message`` of an exception on one line (whitespace folded, quoted texts cut to excerpts, at
    most ``limit`` characters, else at most ``MAX_LINE``), for one-line CLI errors."""
    return shorten(f"{type(exc).__name__}: {exc}", limit or MAX_LINE)


def raised_by(exc: BaseException | None, modules: tuple[str, ...]) -> BaseException | None:
    """The first exception in ``exc``'s chain (itself, then causes and contexts) whose type comes from one of
    ``modules`` (prefixes of module names), or None."""
    seen = 0
    while exc is not None and seen < 10:
        if type(exc).__module__.startswith(modules):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def os_error_line(exc: BaseException) -> tuple[int, str] | None:
    """``(exit code, one line)`` for an OSError with an errno in ``exc``'s chain (a path too long, a
    permission refused, a read-only or full disk), or None: the CLI's last guard against a traceback for
    what the operating system refused. A path too long is bad input (2); the others are failures (1)."""
    import errno

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno is not None:
            break
        exc, seen = exc.__cause__ or exc.__context__, seen + 1  # type: ignore[assignment]
    else:
        return None
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    what = exc.strerror or type(exc).__name__
    where = f" ({excerpt(exc.filename)})" if exc.filename else ""
    if exc.errno == errno.ENAMETOOLONG:
        return 2, f"error: {what}{where}; give a shorter path (file names have at most 255 bytes)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return 1, f"{what}{where}; free some space (or use another disk), then rerun the same command"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return 1, f"{what}{where}; check the permissions of that path, or choose another one"
    return 1, f"{what}{where}"
