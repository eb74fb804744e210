"""Collect a request body in memory, or in a temporary file past a threshold.

A body larger than ``limits.spool_memory_bytes`` goes to a file so that many
concurrent large uploads cannot exhaust memory, and so that worker processes
read it by path instead of receiving it pickled. The file is created with
mode 0600 (tempfile's default) and always removed by :meth:`close`.
"""

from __future__ import annotations

import os
import tempfile

from icapdlp.adaptation.api import Body
from icapdlp.verdict import BlockReason, Blocked


class Spool:
    """Append-only body buffer; :meth:`body` hands the result to the adapter."""

    __slots__ = ("_threshold", "_directory", "_memory", "_file", "_path", "size")

    def __init__(self, memory_threshold: int, directory: str | None = None) -> None:
        self._threshold = memory_threshold
        self._directory = directory
        self._memory: bytearray | None = bytearray()
        self._file = None
        self._path: str | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        try:
            if self._memory is not None:
                if self.size <= self._threshold:
                    self._memory += data
                    return
                self._move_to_file()
            self._file.write(data)
        except OSError as exc:
            raise Blocked(BlockReason.SPOOL_FAILED, f"spool write failed ({exc.strerror})") from None

    def _move_to_file(self) -> None:
        fd, self._path = tempfile.mkstemp(prefix="icapdlp-body-", dir=self._directory)
        self._file = os.fdopen(fd, "wb", buffering=1024 * 1024)
        self._file.write(self._memory)
        self._memory = None

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of what was written so far (a release echoes them while the body grows)."""
        if self._memory is not None:
            return bytes(self._memory[start:end])
        try:
            self._file.flush()
            pieces = []
            while start < end:
                piece = os.pread(self._file.fileno(), end - start, start)
                if not piece:
                    raise OSError(0, "spool shorter than written")
                pieces.append(piece)
                start += len(piece)
        except OSError as exc:
            raise Blocked(BlockReason.SPOOL_FAILED, f"spool read failed ({exc.strerror})") from None
        return b"".join(pieces)

    def body(self) -> Body:
        """The complete body; the spool keeps owning (and later deletes) any file."""
        if self._memory is not None:
            return Body(data=bytes(self._memory))
        try:
            self._file.flush()
        except OSError as exc:
            raise Blocked(BlockReason.SPOOL_FAILED, f"spool flush failed ({exc.strerror})") from None
        return Body(path=self._path, size=self.size)

    @property
    def on_disk(self) -> bool:
        return self._path is not None

    def close(self) -> None:
        """Release memory and delete the temporary file, whatever happened before."""
        self._memory = None
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = None
