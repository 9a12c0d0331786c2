"""Run a stage in a fresh process and report wall time and peak RSS, so stages don't share memory."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Measure:
    stage: str
    variant: str
    seconds: float
    peak_rss_mb: float
    note: str = ""


def _child(queue: mp.Queue, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    started = time.perf_counter()
    note = fn(*args)
    seconds = time.perf_counter() - started
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, note or ""))


def measure(stage: str, variant: str, fn: Callable[..., Any], *args: Any) -> Measure:
    """Run ``fn(*args)`` in a spawned process (module-level functions only); its return value is a note."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, fn, args))
    process.start()
    seconds, rss, note = queue.get()
    process.join()
    return Measure(stage, variant, seconds, rss, str(note))


def markdown(measures: list[Measure]) -> str:
    """A table with each variant's time as a ratio of the stage's baseline (the variant named '... baseline')."""
    lines = ["| stage | variant | seconds | peak RSS MB | time vs baseline | note |", "|---|---|---|---|---|---|"]
    base = {m.stage: m for m in measures if "baseline" in m.variant}
    for m in measures:
        ratio = f"{m.seconds / base[m.stage].seconds:.2f}x" if m.stage in base and base[m.stage].seconds else ""
        lines.append(f"| {m.stage} | {m.variant} | {m.seconds:.2f} | {m.peak_rss_mb:.0f} | {ratio} | {m.note} |")
    return "\n".join(lines)
