"""Progress of a long build on stderr, one phase at a time (tokenize, sort, write, verify).

On a terminal each phase is a tqdm bar with its own rate and, where its size is known, an ETA.
Elsewhere (a log file, a pipe) there is no carriage-return stream: one line when a phase starts
and one when it ends, with its size and time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: ``step(n)``: n more units of the phase are done.
Step = Callable[[int], None]


@dataclass
class _Running:
    """A phase in progress: what a line or a bar shows of it."""

    name: str
    total: int | None
    unit: str
    estimate_s: float | None
    started: float = field(default_factory=time.perf_counter)
    done: int = 0

    def summary(self) -> str:
        took = time.perf_counter() - self.started
        amount = f"{self.done:,} {self.unit} in " if self.done else "done in "
        return f"{self.name}: {amount}{took:.1f} s"


class Progress:
    """Reports phases on stderr; ``enabled=False`` reports nothing.

    Phases may run in two threads at once (a shard sorts in the background while the next
    one is tokenized). On a terminal only the thread that made this object draws: a live bar
    for its own phase and one for the background thread's, refreshed as it steps and while it
    waits, and a summary line above them as each phase ends.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.terminal = enabled and sys.stderr.isatty()
        self._owner = threading.get_ident()  # the thread that draws
        self._lock = threading.Lock()
        self._background: _Running | None = None  # the background thread's phase
        self._finished: list[str] = []  # summaries of background phases, not yet shown
        self._bars: dict[int, tuple[str, Any]] = {}  # 0 main, 1 background -> (phase, bar)

    @contextmanager
    def phase(self, name: str, *, total: int | None = None, unit: str = "tokens",
              estimate_s: float | None = None) -> Iterator[Step]:
        """A phase: yields ``step(n)``. ``total``: the units it will do (gives an ETA).
        ``estimate_s``: for a phase without steps (one library call), its expected seconds."""
        if not self.enabled:
            yield lambda n: None
            return
        run = _Running(name, total, unit, estimate_s)
        main = threading.get_ident() == self._owner
        if not self.terminal:
            size = f" ({total:,} {unit})" if total is not None else ""
            print(f"{name}{size} ...", file=sys.stderr, flush=True)
        elif not main:
            with self._lock:
                self._background = run

        drawn = 0.0

        def step(n: int) -> None:
            nonlocal drawn
            run.done += n
            if self.terminal and main and time.perf_counter() - drawn > 0.2:
                self._draw(0, run)
                self._draw_background()
                drawn = time.perf_counter()

        if self.terminal and main:
            self._draw(0, run)
        try:
            yield step
        finally:
            if self.terminal and main:
                self._close(1)  # reopened at the top row by the next draw: a bar left below
                self._close(0)  # an empty row garbles the lines written above it
        if not self.terminal:
            print(run.summary(), file=sys.stderr, flush=True)
        elif main:
            self._write(run.summary())
        else:
            with self._lock:
                self._background = None
                self._finished.append(run.summary())

    def wait(self, ready: Callable[[float], bool]) -> None:
        """Block (in the drawing thread) until ``ready(timeout_s)`` is true, drawing the
        background phase meanwhile: a phase without steps still shows its time passing."""
        while not ready(0.5):
            if self.terminal:
                self._draw_background()
        if self.terminal:
            self._draw_background()

    # -- drawing: the owner thread only

    def _draw_background(self) -> None:
        with self._lock:
            run, finished, self._finished = self._background, self._finished, []
        if finished or run is None:
            self._close(1)  # before the lines: a line written over a closing bar is garbled
        for line in finished:
            self._write(line)
        if run is not None:
            self._draw(1, run)

    def _draw(self, row: int, run: _Running) -> None:
        from tqdm import tqdm

        name, bar = self._bars.get(row, ("", None))
        if bar is None or name != run.name:
            self._close(row)
            # The first free terminal row (a bar keeps the row it was opened in).
            taken = {b.pos for _, b in self._bars.values()}
            at = next(r for r in (0, 1, 2) if r not in taken and -r not in taken)
            if run.estimate_s is not None:
                bar = tqdm(total=round(run.estimate_s, 1), position=at, leave=False,
                           desc=f"{run.name} (time estimated)",
                           bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, "
                                      "~{remaining} left")
            else:
                bar = tqdm(total=run.total, desc=run.name, unit=f" {run.unit}",
                           unit_scale=True, position=at, leave=False)
            self._bars[row] = (run.name, bar)
        elapsed = time.perf_counter() - run.started
        bar.n = min(bar.total, round(elapsed, 1)) if run.estimate_s is not None else run.done
        bar.refresh()

    def _close(self, row: int) -> None:
        _, bar = self._bars.pop(row, ("", None))
        if bar is not None:
            bar.close()

    def _write(self, line: str) -> None:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
