"""Runs side by side in lockstep, stopped together by a time limit: equal steps in equal wall time.

Two contenders trained at once on one GPU share it, and the slower one (SymDiff: its gamma network
and symmetrisation add work to every step) would make fewer steps in the same time; a comparison
at equal steps needs them to keep pace.  :class:`Lockstep` does that through a folder of small files,
one per run: after each step a run writes its step and waits while it is ahead of the slowest
running peer (the faster run yields the GPU to the slower).  When a run's time limit has passed it
publishes a last step (one past the furthest step any of them reached), and every run stops there,
so all end at the same step.  A run that has stopped, finished or stayed silent for ``patience``
seconds (a crash, a long compilation) is no longer waited for.

The numbers of a run stopped at step ``N`` are those of the same configuration with ``steps = N``
(nothing in the training loop reads the planned step count before the last step): the time limit
chooses ``N``, the record says which (``stopped_at_step``), and ``--steps N`` reproduces it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Lockstep"]


@dataclass(frozen=True)
class Lockstep:
    """The pace of run ``name`` among ``names`` (all of them, ``name`` included), through files in ``folder``.

    Without ``name``, the group: :meth:`for_run` names the run (``train`` does, with its run's name).
    Picklable (a spawned process gets its own copy).  ``poll``: seconds between looks at the peers;
    ``patience``: seconds after which a silent peer is not waited for.
    """

    folder: Path
    names: tuple[str, ...]
    name: str | None = None
    poll: float = 0.002
    patience: float = 180.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.name is not None and self.name not in self.names:
            raise ValueError(f"{self.name!r} is not among the runs {self.names}")

    def for_run(self, name: str) -> Lockstep:
        """The same group, seen by run ``name``."""
        return Lockstep(self.folder, self.names, name, self.poll, self.patience, self.clock)

    def _path(self, name: str) -> Path:
        return Path(self.folder) / f"{name}.pace.json"

    def _me(self) -> str:
        if self.name is None:
            raise ValueError("a Lockstep group paces a run only once for_run has named it")
        return self.name

    def _write(self, **state: Any) -> None:
        path = self._path(self._me())
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps({**state, "time": time.time()}))
        os.replace(partial, path)

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(name).read_text())  # type: ignore[no-any-return]
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def start(self) -> None:
        """Before the first step: this run is at step 0 (clears a stale file of an earlier group)."""
        self._write(step=0, done=False, last=None)

    @contextmanager
    def running(self) -> Iterator[Lockstep]:
        """:meth:`start`, then :meth:`finish` however the block ends (a run that fails is not waited for)."""
        self.start()
        try:
            yield self
        finally:
            self.finish()

    def finish(self) -> None:
        """After training: peers no longer wait for this run."""
        state = self._read(self._me()) or {}
        self._write(step=state.get("step", 0), done=True, last=state.get("last"))

    def after(self, step: int, out_of_time: bool) -> bool:
        """Called after step ``step``: whether to stop now.  Waits while a running peer is behind this run."""
        last = (self._read(self._me()) or {}).get("last")
        written: tuple[int, int | None] | None = None
        waited_since = self.clock()
        while True:
            peers = [s for s in (self._read(n) for n in self.names if n != self.name) if s is not None]
            if last is None:
                published = [s["last"] for s in peers if s.get("last") is not None]
                if published:
                    last = min(published)
                elif out_of_time:
                    last = max([step] + [s["step"] for s in peers]) + 1
            if written != (step, last):
                self._write(step=step, done=False, last=last)
                written = (step, last)
            if last is not None and step >= last:
                return True
            behind = [s for s in peers if not s.get("done") and s["step"] < step
                      and time.time() - s["time"] < self.patience]
            if not behind or self.clock() - waited_since > self.patience:
                return False
            time.sleep(self.poll)
