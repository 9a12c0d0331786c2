"""The exact minimum suppression pattern (a HiGHS MILP), and the loss figures every pattern is judged by.

Why: the heuristic picks complements greedily, line by line, and can hide more than it must. The MILP
chooses which cells to hide so the hidden count is smallest, under the same rules the heuristic
enforces: no line (a total and its members) has exactly one hidden cell; a line with a published total
hides members adding up to more than the threshold; zeros are not complements unless zeros are
protected; a hidden margin costs more than any set of interior cells (CT's handbook: keep totals), and
a margin over k dimensions (the grand total: 2) costs k times as much.
These rules are necessary, not sufficient, so the caller still runs the attacker LP audit on the result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from ct_pipelines.protect.suppression_core import Constraint, SuppressionTimeout, _audit


@dataclass(frozen=True)
class Loss:
    """What a suppression pattern hides: cells, interior count and share of the total, largest margin."""

    cells: int
    hidden_count: int
    total_count: int
    largest_hidden_margin: int

    @property
    def hidden_share(self) -> float:
        return self.hidden_count / self.total_count if self.total_count else 0.0


def loss_of(values: np.ndarray, suppressed: np.ndarray, is_margin: np.ndarray) -> Loss:
    interior = ~is_margin
    hidden_margins = values[suppressed & is_margin]
    return Loss(
        cells=int(suppressed.sum()),
        hidden_count=int(values[suppressed & interior].sum()),
        total_count=int(values[interior].sum()),
        largest_hidden_margin=int(hidden_margins.max()) if len(hidden_margins) else 0,
    )


#: Rounds of attacker cuts before the last pattern found goes to the audit's repair.
CUT_ROUNDS = 30


def optimal_pattern(
    values: np.ndarray,
    constraints: Sequence[Constraint],
    primary: np.ndarray,
    threshold: int,
    protect_zeros: bool,
    margin_level: np.ndarray,
    node_limit: int,
    deadline: float,
    shown: np.ndarray | None = None,
    sensitive: np.ndarray | None = None,
) -> np.ndarray | None:
    """The cheapest pattern meeting the line rules and the attacker cuts; None when HiGHS proved none
    within ``node_limit`` branch-and-bound nodes.

    After each MILP the attacker LP audit looks at the pattern; every small count the attacker could
    still confine to 0..T yields a cut from that LP's dual (Fischetti and Salazar's capacity cut) and the
    MILP is solved again, so the attacker's own constraints shape the minimum.

    Why a node count and not seconds: the same table must get the same pattern on every run, or two
    releases hide different cells and their difference discloses the small counts. ``deadline`` (a
    ``time.perf_counter`` value) is only a safety stop: passing it raises ``SuppressionTimeout``.
    """
    n = len(values)
    if not constraints or not primary.any():
        return primary.copy()
    # ``primary`` is every cell that must be hidden (small counts, and what the last release hid); the
    # attacker cuts protect the small ones (``sensitive``); ``shown`` cells stay published
    sensitive = primary if sensitive is None else sensitive
    margin_penalty = float(values[margin_level == 0].sum() + n + 1)
    cost = values.astype(float) + 1.0 + margin_level * margin_penalty
    lower = primary.astype(float)
    upper = np.ones(n)
    if not protect_zeros:
        upper[(values == 0) & ~primary] = 0.0
    if shown is not None:
        upper[shown & ~primary] = 0.0
    base = _line_rules(values, constraints, threshold, n)
    cuts: list[tuple[np.ndarray, float]] = []
    best: np.ndarray | None = None
    for _ in range(CUT_ROUNDS):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise SuppressionTimeout
        pattern = _solve(cost, base, cuts, lower, upper, node_limit, remaining)
        if time.perf_counter() >= deadline:
            raise SuppressionTimeout
        if pattern is None:
            break
        best = pattern
        failures, _ = _audit(values, constraints, pattern, np.flatnonzero(sensitive), threshold)
        exposed = [f.cell for f in failures if f.attacker_max <= threshold + 1e-6]
        new_cuts = attacker_cuts(values, constraints, pattern, exposed, threshold)
        if not new_cuts:
            break
        cuts.extend(new_cuts)
    # out of nodes or rounds after a first solve: the caller's audit repairs what cuts did not reach
    return best


def _line_rules(
    values: np.ndarray, constraints: Sequence[Constraint], threshold: int, n: int
) -> sparse.csr_matrix:
    """Rows (>= 0): no line has a lone hidden cell; hidden members of a published total add up to > T."""
    rows, cols, data = [], [], []
    row = 0
    for line in constraints:
        cells = (line.total, *line.members)
        for cell in cells:  # y_cell <= sum of the other cells of the line
            for other in cells:
                rows.append(row)
                cols.append(other)
                data.append(-1.0 if other == cell else 1.0)
            row += 1
        for member in line.members:
            for other in line.members:
                rows.append(row)
                cols.append(other)
                data.append(float(values[other]) - (threshold + 1.0 if other == member else 0.0))
            rows.append(row)
            cols.append(line.total)
            data.append(threshold + 1.0)
            row += 1
    return sparse.csr_matrix((data, (rows, cols)), shape=(row, n))  # duplicates are summed


def _solve(
    cost: np.ndarray,
    base: sparse.csr_matrix,
    cuts: list[tuple[np.ndarray, float]],
    lower: np.ndarray,
    upper: np.ndarray,
    node_limit: int,
    time_limit: float,
) -> np.ndarray | None:
    blocks = [LinearConstraint(base, lb=np.zeros(base.shape[0]), ub=np.full(base.shape[0], np.inf))]
    if cuts:
        matrix = np.vstack([c for c, _ in cuts])
        blocks.append(
            LinearConstraint(matrix, lb=np.array([r for _, r in cuts]), ub=np.full(len(cuts), np.inf))
        )
    result = milp(
        cost,
        constraints=blocks,
        integrality=np.ones(len(cost)),
        bounds=Bounds(lower, upper),
        options={"node_limit": node_limit, "time_limit": time_limit, "disp": False},
    )
    if result.status != 0 or result.x is None:  # not proven within the nodes: no exact minimum
        return None
    return result.x > 0.5


def attacker_cuts(
    values: np.ndarray,
    constraints: Sequence[Constraint],
    pattern: np.ndarray,
    exposed: Sequence[int],
    threshold: int,
) -> list[tuple[np.ndarray, float]]:
    """One cut per small count the attacker can keep at or below T: sum(a_j * y_j) >= T + 1 - value.

    The attacker maximises the cell's deviation z subject to the additivity rows, published cells
    fixed (z = 0) and hidden cells z >= -value. The LP dual bounds that maximum for every pattern, so
    a_j = value_j * (dual of j's lower bound), plus T + 1 - value for a published cell whose fixing
    binds upward (hiding it could let the cell grow without bound); coefficients are capped at the
    right-hand side, which keeps the cut valid for 0/1 variables.
    """
    n = len(values)
    rows, cols, data = [], [], []
    for r, line in enumerate(constraints):
        rows.append(r)
        cols.append(line.total)
        data.append(1.0)
        for member in line.members:
            rows.append(r)
            cols.append(member)
            data.append(-1.0)
    a_eq = sparse.csr_matrix((data, (rows, cols)), shape=(len(constraints), n))
    low = np.where(pattern, -values.astype(float), 0.0)
    high = np.where(pattern, np.inf, 0.0)
    cuts = []
    for cell in exposed:
        needed = threshold + 1.0 - float(values[cell])
        top = high.copy()
        top[cell] = needed
        objective = np.zeros(n)
        objective[cell] = -1.0
        result = linprog(
            objective,
            A_eq=a_eq,
            b_eq=np.zeros(len(constraints)),
            bounds=np.column_stack([low, top]),
            method="highs",
        )
        if result.status != 0 or -result.fun >= needed - 1e-7:
            continue
        coefficients = values * np.maximum(result.lower.marginals, 0.0)
        coefficients[(~pattern) & (result.upper.marginals < -1e-9)] = needed
        coefficients = np.minimum(np.where(coefficients > 1e-9, coefficients, 0.0), needed)
        coefficients[cell] = 0.0  # always hidden: its own bound is not a choice
        cuts.append((coefficients, needed))
    return cuts
