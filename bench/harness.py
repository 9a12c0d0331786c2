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


@dataclass
class ChildRun:
    """What one function did in its own process: wall seconds (after imports), peak RSS, CPU, return value."""

    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    value: Any


def _child(queue: mp.Queue, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    started = time.perf_counter()
    value = fn(*args)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)  # the child's own peak, not earlier stages'
    queue.put(ChildRun(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, value))


def run_in_child(fn: Callable[..., Any], *args: Any) -> ChildRun:
    """Run ``fn(*args)`` in a spawned process (module-level functions only) so its memory is its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, fn, args))
    process.start()
    run = queue.get()
    process.join()
    if process.exitcode:
        raise SystemExit(f"stage {fn.__name__} failed with exit code {process.exitcode}")
    return run


def measure(stage: str, variant: str, fn: Callable[..., Any], *args: Any) -> Measure:
    """Run ``fn(*args)`` in a spawned process; its return value is a note."""
    run = run_in_child(fn, *args)
    return Measure(stage, variant, run.seconds, run.peak_rss_mb, str(run.value or ""))


def markdown(measures: list[Measure]) -> str:
    """A table with each variant's time as a ratio of the stage's baseline (the variant named '... baseline')."""
    lines = [
        "| stage | variant | seconds | peak RSS MB | time vs baseline | note |",
        "|---|---|---|---|---|---|",
    ]
    base = {m.stage: m for m in measures if "baseline" in m.variant}
    for m in measures:
        ratio = (
            f"{m.seconds / base[m.stage].seconds:.2f}x" if m.stage in base and base[m.stage].seconds else ""
        )
        lines.append(
            f"| {m.stage} | {m.variant} | {m.seconds:.2f} | {m.peak_rss_mb:.0f} | {ratio} | {m.note} |"
        )
    return "\n".join(lines)


def naive_pandas_checks(
    frame: Any, schema: Any, expectations: list[tuple[str, dict[str, Any]]]
) -> tuple[int, bool]:
    """The baseline a data engineer would write: pandera on the whole pandas frame, then GX 1.x on pandas.
    Returns (pandera failure cases, whether every GX expectation passed)."""
    import great_expectations as gx
    import pandera.pandas as pa

    try:
        schema.validate(frame, lazy=True)
        failures = 0
    except pa.errors.SchemaErrors as errors:
        failures = len(errors.failure_cases)
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("pandas").add_dataframe_asset("bench")
        .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    )  # fmt: skip
    suite = gx.ExpectationSuite(name="bench")
    for name, kwargs in expectations:
        camel = "".join(p.capitalize() for p in name.split("_"))
        suite.add_expectation(getattr(gx.expectations, camel)(**kwargs))
    return failures, bool(batch.validate(suite).success)
