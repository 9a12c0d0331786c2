"""The exact minimum suppression pattern (a HiGHS MILP), and the loss figures every pattern is judged by.

Why: the heuristic picks complements greedily, line by line, and can hide more than it must. The MILP
chooses which cells to hide so the hidden count is smallest, under the same rules the heuristic
enforces: no line (a total and its members) has exactly one hidden cell; a line with a published total
hides members adding up to more than the threshold; zeros are not complements unless zeros are
protected; a hidden margin costs more than any set of interior cells (CT's handbook: keep totals).
These rules are necessary, not sufficient, so the caller still runs the attacker LP audit on the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from ct_pipelines.privacy.suppression_core import Constraint


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


def optimal_pattern(
    values: np.ndarray,
    constraints: Sequence[Constraint],
    primary: np.ndarray,
    threshold: int,
    protect_zeros: bool,
    is_margin: np.ndarray,
    time_limit: float,
) -> np.ndarray | None:
    """The cheapest pattern meeting the line rules, or None when HiGHS does not prove it in time."""
    n = len(values)
    if not constraints or not primary.any():
        return primary.copy()
    margin_penalty = float(values[~is_margin].sum() + n + 1)
    cost = values.astype(float) + 1.0 + np.where(is_margin, margin_penalty, 0.0)
    lower = primary.astype(float)
    upper = np.ones(n)
    if not protect_zeros:
        upper[(values == 0) & ~primary] = 0.0
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
        for member in line.members:  # published total: hidden members add up to more than T
            for other in line.members:
                rows.append(row)
                cols.append(other)
                data.append(float(values[other]) - (threshold + 1.0 if other == member else 0.0))
            rows.append(row)
            cols.append(line.total)
            data.append(threshold + 1.0)
            row += 1
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(row, n))  # duplicates are summed
    result = milp(
        cost,
        constraints=LinearConstraint(matrix, lb=np.zeros(row), ub=np.full(row, np.inf)),
        integrality=np.ones(n),
        bounds=Bounds(lower, upper),
        options={"time_limit": time_limit, "disp": False},
    )
    if result.status != 0 or result.x is None:
        return None
    return result.x > 0.5
