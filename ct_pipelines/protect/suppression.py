"""Small-cell suppression of count tables with named dimensions: margins, collapsing, loss figures.

The engine (complements and the attacker LP audit) is in ``suppression_core``; the exact minimum
pattern in ``optimal``. This module turns a table of interior cells into cells plus margins and back.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ct_pipelines.protect.optimal import Loss, loss_of
from ct_pipelines.protect.suppression_core import (  # noqa: F401 - re-exported for callers and tests
    NODE_LIMIT,
    AuditFailure,
    CellSuppression,
    Constraint,
    SuppressionInputError,
    attacker_interval,
    is_sensitive,
    protect_cells,
)


@dataclass
class SuppressionResult:
    """The full published table (interior cells and margins) with suppression flags, audit and loss figures."""

    table: pd.DataFrame  # dims + count (nullable Int64, <NA> where suppressed) + flag + "is_margin"
    dims: list[str]
    count: str
    flag: str
    threshold: int
    protect_zeros: bool
    primary_count: int
    complementary_count: int
    audit_passed: bool
    failures: list[dict]
    lp_solves: int
    loss: Loss | None = None
    largest_hidden_margin_cell: dict | None = None  # the dimension labels of that margin
    method: str = "heuristic"
    values: np.ndarray | None = None  # every cell's true count, hidden or not, in ``table``'s order

    def release(self) -> pd.DataFrame:
        """What this table releases, for the next release to keep: dims as text, true value, hidden."""
        frame = self.table[self.dims].astype(str)
        return frame.assign(__value=self.values, __hidden=self.table[self.flag].to_numpy(bool))

    def loss_metadata(self) -> dict[str, object]:
        """Figures for reports: cells hidden, share of the total count hidden, the largest hidden margin."""
        if self.loss is None:
            return {}
        return {
            "count_column": self.count,
            "cells_suppressed": self.loss.cells,
            "hidden_count": self.loss.hidden_count,
            "hidden_share_of_total": round(self.loss.hidden_share, 6),
            "largest_hidden_margin": self.loss.largest_hidden_margin,
            "largest_hidden_margin_cell": self.largest_hidden_margin_cell,
            "method": self.method,
        }


def _margin_dims(dims: list[str], margins: bool | Sequence[str]) -> list[str]:
    if margins is True:
        return list(dims)
    if margins is False:
        return []
    wanted = set(margins)
    return [d for d in dims if d in wanted]


def margin_table(
    cells: pd.DataFrame,
    dims: list[str],
    count: str,
    total_label: str,
    margins: bool | Sequence[str] = True,
) -> tuple[pd.DataFrame, list[Constraint]]:
    """Interior cells plus the margins over ``margins`` (True: every dimension) and their relations.

    Missing dimension combinations are added as zero cells so every line is complete. A dimension
    left out of ``margins`` (e.g. a snapshot date) splits the table into independent slices.
    """
    totalled = _margin_dims(dims, margins)
    levels = [list(dict.fromkeys(cells[d].tolist())) for d in dims]
    interior = pd.DataFrame(list(itertools.product(*levels)), columns=dims) if dims else pd.DataFrame()
    interior = interior.merge(cells[[*dims, count]], on=dims, how="left")
    interior[count] = interior[count].fillna(0).astype("int64")
    interior["is_margin"] = False
    if not totalled:
        return interior, []
    full = [interior]
    for mask in itertools.product([False, True], repeat=len(totalled)):
        if not any(mask):
            continue
        summed = {d for d, is_total in zip(totalled, mask, strict=True) if is_total}
        kept = [d for d in dims if d not in summed]
        if kept:
            block = interior.groupby(kept, sort=False, as_index=False)[count].sum()
        else:
            block = pd.DataFrame({count: [int(interior[count].sum())]})
        for d in summed:
            block[d] = total_label
        block["is_margin"] = True
        full.append(block[[*dims, count, "is_margin"]])
    table = pd.concat(full, ignore_index=True)
    position = {tuple(row): i for i, row in enumerate(table[dims].itertuples(False, None))}
    axes = [i for i, d in enumerate(dims) if d in totalled]
    constraints = []
    for i, row in enumerate(table[dims].itertuples(False, None)):
        for axis in axes:
            if row[axis] != total_label:
                continue
            members = tuple(position[(*row[:axis], level, *row[axis + 1 :])] for level in levels[axis])
            constraints.append(Constraint(total=i, members=members))
    return table, constraints


def collapse_categories(
    cells: pd.DataFrame,
    dims: list[str],
    count: str | Sequence[str],
    collapse: dict[str, list[str]],
    label: str,
) -> pd.DataFrame:
    """Merge small categories into one (e.g. "Another race/ethnicity") so fewer cells need hiding."""
    if not collapse:
        return cells
    counts = [count] if isinstance(count, str) else list(count)
    merged = cells.copy()
    for dimension, categories in collapse.items():
        if dimension in merged:
            merged[dimension] = merged[dimension].where(~merged[dimension].isin(categories), label)
    return merged.groupby(dims, sort=False, as_index=False, dropna=False)[counts].sum()


def validate_cells(
    cells: pd.DataFrame, dims: list[str], count: str, total_label: str, totalled: Sequence[str] | None = None
) -> None:
    """Refuse tables the solver would get wrong: missing columns, bad counts, duplicates, label clashes."""
    missing = [c for c in [*dims, count] if c not in cells.columns]
    if missing:
        raise SuppressionInputError(
            f"column(s) {', '.join(missing)} not found; available: {', '.join(map(str, cells.columns))}"
        )
    if not dims:
        raise SuppressionInputError("at least one dimension is needed")
    counts = pd.to_numeric(cells[count], errors="coerce")
    bad = counts.isna() | (counts < 0) | (counts != counts.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        cell = ", ".join(f"{d}={cells[d].iloc[row]}" for d in dims)
        value = cells[count].iloc[row]
        shown = "empty (none of its rows has a value)" if pd.isna(value) else f"{value}"
        raise SuppressionInputError(
            f"the count in column '{count}' of the cell {cell} is {shown}, not a whole number of zero or "
            "more; count rows (agg: count), or mark the column required so rows without a value are set aside"
        )
    for d in dims if totalled is None else totalled:
        if (cells[d].astype(str) == total_label).any():
            raise SuppressionInputError(
                f"dimension '{d}' already contains the total label '{total_label}'; pass only interior "
                "cells or choose another total label"
            )
    duplicated = cells.duplicated(dims, keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        key = ", ".join(f"{d}={cells[d].iloc[row]}" for d in dims)
        raise SuppressionInputError(f"row {row + 1}: the cell ({key}) appears more than once")


def released_as_before(
    table: pd.DataFrame, dims: list[str], values: np.ndarray, last_release: pd.DataFrame | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(hidden last release, shown last release) for each cell of ``table`` whose value is the one that
    release had; cells it did not have, or whose value changed, are in neither."""
    if last_release is None or last_release.empty or not set(dims) <= set(last_release.columns):
        return None, None  # none yet, or released by other dimensions: nothing to keep
    keys = table[dims].astype(str).agg("\x1f".join, axis=1) if dims else pd.Series([""] * len(table))
    before = last_release.assign(_key=last_release[dims].astype(str).agg("\x1f".join, axis=1))
    found = keys.map(before.set_index("_key")["__value"]).to_numpy()
    hidden = keys.map(before.set_index("_key")["__hidden"]).to_numpy()
    same = np.array(
        [v is not None and not pd.isna(v) and int(v) == int(x) for v, x in zip(found, values, strict=True)]
    )
    hidden_flag = np.array([bool(h) if not pd.isna(h) else False for h in hidden])
    return same & hidden_flag, same & ~hidden_flag


def suppress(
    cells: pd.DataFrame,
    dims: list[str],
    count: str,
    threshold: int,
    protect_zeros: bool = False,
    total_label: str = "Total",
    margins: bool | Sequence[str] = True,
    flag: str = "suppressed",
    method: str = "auto",
    time_limit: float = 60.0,
    node_limit: int = NODE_LIMIT,
    last_release: pd.DataFrame | None = None,
) -> SuppressionResult:
    """Protect a count table given as interior cells; the result holds the margins that get published.

    ``margins``: True for totals over every dimension, or the dimensions that get totals.
    ``last_release``: the cells the last publish released (``dims`` as text, ``value``, ``hidden``); a cell
    whose value is unchanged keeps what that release did with it (see ``protect_cells``).
    """
    validate_cells(cells, dims, count, total_label, _margin_dims(dims, margins))
    as_ints = cells.assign(**{count: pd.to_numeric(cells[count]).astype("int64")})
    table, constraints = margin_table(as_ints, dims, count, total_label, margins)
    values = table[count].to_numpy(np.int64)
    is_margin = table["is_margin"].to_numpy()
    totals_per_row = (table[dims] == total_label).sum(axis=1).to_numpy(np.int64)
    margin_level = np.where(is_margin, totals_per_row, 0)  # the grand total of a two-way table: 2
    keep_hidden, keep_shown = released_as_before(table, dims, values, last_release)
    outcome = protect_cells(
        values,
        constraints,
        threshold,
        protect_zeros,
        margin_level,
        method=method,
        time_limit=time_limit,
        node_limit=node_limit,
        keep_hidden=keep_hidden,
        keep_shown=keep_shown,
    )
    published = table[[*dims]].copy()
    published[count] = pd.array(np.where(outcome.suppressed, 0, values), dtype="Int64")
    published.loc[outcome.suppressed, count] = pd.NA
    published[flag] = outcome.suppressed
    published["is_margin"] = is_margin
    failures = [
        {
            **{d: str(table[d].iloc[f.cell]) for d in dims},
            "attacker_min": round(f.attacker_min, 3),
            "attacker_max": round(f.attacker_max, 3),
        }
        for f in outcome.failures
    ]
    loss = loss_of(values, outcome.suppressed, is_margin)
    hidden_margins = np.flatnonzero(outcome.suppressed & is_margin)
    largest = None
    if len(hidden_margins):
        cell = int(hidden_margins[np.argmax(values[hidden_margins])])
        largest = {d: str(table[d].iloc[cell]) for d in dims}
    return SuppressionResult(
        table=published,
        dims=dims,
        count=count,
        flag=flag,
        threshold=threshold,
        protect_zeros=protect_zeros,
        primary_count=outcome.primary_count,
        complementary_count=outcome.complementary_count,
        audit_passed=outcome.audit_passed,
        failures=failures,
        lp_solves=outcome.lp_solves,
        loss=loss,
        largest_hidden_margin_cell=largest,
        method=outcome.method,
        values=values,
    )
