"""The results file: append-only JSON lines, one record per finished task, locked and fsynced.

A record is written whole (Ctrl-C and SIGTERM are held off while the line is written) and
flushed to disk before the next one, so an interrupt or a crash loses no finished result.
A final line without its newline (a write cut short by power loss) is ignored when the file
is read and cut off before the next append; any other unreadable line is an error.  The first
record of a key wins, so a resumed sweep never counts a task twice.
"""

from __future__ import annotations

import json
import os
import signal

from .errors import SweepError

RECORD_FORMAT = "unrectify-sweep/1"


def load_results(path: str | os.PathLike) -> dict[str, dict]:
    """Records of a results file by task key (the first record of a key wins).  A final line
    without its newline (a write cut short) is ignored; any other unreadable line is an error."""
    path = str(path)
    if not os.path.exists(path):
        return {}
    if os.path.isdir(path):
        raise SweepError(f"results path is a directory: {path}")
    with open(path, "rb") as fh:
        data = fh.read()
    return parse_results(data, path)[0]


def parse_results(data: bytes, path: str) -> tuple[dict[str, dict], int]:
    """(records by key, length of the valid prefix in bytes)."""
    out: dict[str, dict] = {}
    pos = 0
    lineno = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        lineno += 1
        if end < 0:          # truncated final line: ignored, and cut off before appending
            break
        line = data[pos:end].strip()
        pos = end + 1
        if not line:
            continue
        try:
            rec = json.loads(line)
            key = rec["key"]
            if not isinstance(key, str) or not isinstance(rec.get("result"), dict):
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise SweepError(f"results file {path} line {lineno} is not a sweep record; "
                             f"use another --results file or remove that line") from None
        out.setdefault(key, rec)
    return out, pos


class ResultsFile:
    """The append-only JSON-lines results file, locked against a second concurrent sweep."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.fd: int | None = None
        d = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(d):
            raise SweepError(f"results directory does not exist: {d}")
        if os.path.isdir(self.path):
            raise SweepError(f"results path is a directory: {self.path}")
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise SweepError(f"cannot open results file {self.path} ({exc.strerror})") from None
        try:
            self._lock()
            data = b""
            while chunk := os.read(self.fd, 1 << 20):
                data += chunk
            self.records, valid = parse_results(data, self.path)
            if valid < len(data):       # a truncated last line: drop it so appends stay whole lines
                os.ftruncate(self.fd, valid)
                os.fsync(self.fd)
            self.repaired = len(data) - valid
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:   # not POSIX: no lock
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepError(f"results file {self.path} is in use by another sweep") from None

    def append(self, record: dict) -> bool:
        """Write one whole line, then flush it to disk; Ctrl-C is held off while writing.
        A record whose key is already in the file is not written (returns False)."""
        if record["key"] in self.records:
            return False
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        masked = hasattr(signal, "pthread_sigmask")
        if masked:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            view = memoryview(line)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            os.fsync(self.fd)
        finally:
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.records[record["key"]] = record
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)   # releases the lock
            self.fd = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
