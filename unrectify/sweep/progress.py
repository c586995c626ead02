"""Progress of a running sweep: a tqdm bar on stderr (or nothing), fed one event per task."""

from __future__ import annotations

import sys


class Progress:
    """``done(record)`` after a task's record is written, ``failed()`` after a task failed on
    a worker; ``close()`` at the end.  ``enabled=False`` shows nothing."""

    def __init__(self, total: int, initial: int, enabled: bool = True) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, desc="sweep", unit="task", file=sys.stderr,
                            dynamic_ncols=True)

    def done(self, record: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{record['task']['encoding']}/{record['task']['domain']}: "
                                     f"{record['result'].get('status')}", refresh=False)
            self.bar.update(1)

    def failed(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
