"""User errors at the command line: one line on stderr, naming the path and what to do, exit 2.

Why one boundary: a traceback tells an operator nothing they can act on, and
an exception's text may quote a value read from a file. Commands raise
:class:`UsageError` (or let ``ConfigError`` / ``OSError`` through) and
:func:`icapdlp.cli.main.main` turns each into exactly one line. Messages
name files and settings, never a value from inside an object.
"""

from __future__ import annotations

import errno
import os

#: exit status of every user error (argparse uses 2 for bad arguments too)
EXIT_USAGE = 2
#: exit status of an unexpected failure inside icapdlp (a bug, not the user's doing)
EXIT_INTERNAL = 1

#: what to do about the OS errors a user can cause, by errno
_ADVICE = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check the permissions, or run as a user who may access it",
    errno.EPERM: "check the permissions, or run as a user who may access it",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EROFS: "choose a writable location",
    errno.ENOSPC: "free some space or choose another location",
    errno.EEXIST: "choose a name that does not exist yet",
}


class UsageError(Exception):
    """A mistake the user can fix; the message is the whole line (path, problem, what to do)."""


def os_error_line(exc: OSError) -> str:
    """``PATH: problem; what to do`` for an OSError (no traceback, no payload)."""
    where = exc.filename if exc.filename is not None else "(unknown path)"
    problem = exc.strerror or type(exc).__name__
    advice = _ADVICE.get(exc.errno or 0, "check the path and its permissions")
    return f"{os.fsdecode(where)}: {problem.lower()}; {advice}"


def printable(text: str) -> str:
    """``text`` with control characters escaped: a file name must not move the cursor, clear the
    screen or start a second line of what is meant to be one."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
