"""Progress of a batch: a bar with rate and ETA on a terminal, plain lines otherwise.

Why two forms: a person at a terminal wants one updating line (tqdm draws it:
count, percentage, files/s, elapsed and remaining time); a log file, CI or
``| tee`` wants one line per file, with no carriage returns or escape codes.
Lines name files and closed-set outcomes, never a value from inside a file.
"""

from __future__ import annotations

import os
from typing import TextIO

from icapdlp.cli.errors import printable

#: bar width when the terminal does not say how wide it is (tqdm is also told it has 24 rows)
FALLBACK_COLUMNS = 80


class Progress:
    """Call :meth:`update` once per finished file, then :meth:`close`."""

    def __init__(self, total: int, stream: TextIO, *, terminal: bool | None = None) -> None:
        self.total = total
        self.stream = stream
        self.done = 0
        self.terminal = stream.isatty() if terminal is None else terminal
        self._bar = None
        if self.terminal and total:
            from tqdm import tqdm

            # a terminal that reports no size (a fresh pty, a serial console) made tqdm draw nothing
            size = {"dynamic_ncols": True} if _columns(stream) > 0 else {"ncols": FALLBACK_COLUMNS, "nrows": 24}
            self._bar = tqdm(total=total, unit="file", file=stream, leave=True, **size)

    def update(self, outcome: str, path: str, counts: dict[str, int]) -> None:
        """One file finished with ``outcome`` ("written", "BLOCKED reason", ...); ``counts`` so far."""
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix(counts, refresh=False)
            self._bar.update(1)
            return
        print(f"[{self.done}/{self.total}] {outcome}: {printable(path)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0
