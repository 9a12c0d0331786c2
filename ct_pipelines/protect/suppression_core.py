"""Small-cell suppression engine on cells + additivity constraints: primary, complementary, attacker LP audit.

Why an audit: the usual "no line has exactly one suppressed cell" rule still leaks (a cell can be
recovered from totals and non-negativity, e.g. when zeros are used as complements). So after choosing
complements (greedily, or the exact minimum from ``optimal``) we solve the attacker's min/max linear
programs (scipy HiGHS) over every published cell and every additivity relation, and keep suppressing
until no sensitive cell can be confined to 1..T.

A table is cells (a value each) plus constraints ``cell[total] == sum(cell[members])``, so 1-D, 2-D,
k-D and hierarchies share one solver.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

TOLERANCE = 1e-6  # HiGHS feasibility tolerance is 1e-7; proofs need a clear margin above it
METHODS = ("auto", "heuristic", "optimal")


@dataclass(frozen=True)
class Constraint:
    """One published additive relation: the total cell equals the sum of the member cells."""

    total: int
    members: tuple[int, ...]


@dataclass
class AuditFailure:
    """A sensitive suppressed cell the attacker can still confine to the disclosive range."""

    cell: int
    value: int
    attacker_min: float
    attacker_max: float


@dataclass
class CellSuppression:
    """Which cells to hide, why, and what the attacker could still learn about them."""

    suppressed: np.ndarray  # bool per cell
    primary: np.ndarray  # bool per cell: sensitive itself
    failures: list[AuditFailure] = field(default_factory=list)
    lp_solves: int = 0
    audit_rounds: int = 0
    method: str = "heuristic"  # how complements were chosen: heuristic, optimal, or optimal+repair
    seconds_optimal: float = 0.0  # time spent on the exact minimum (also when it timed out)

    @property
    def primary_count(self) -> int:
        return int(self.primary.sum())

    @property
    def complementary_count(self) -> int:
        return int((self.suppressed & ~self.primary).sum())

    @property
    def audit_passed(self) -> bool:
        return not self.failures


class SuppressionInputError(ValueError):
    """The cell table cannot be suppressed as given (missing columns, bad counts, duplicates)."""


class SuppressionTimeout(SuppressionInputError):
    """The exact search outran its safety limit in seconds: a pattern cut short there would depend on
    the machine's load, so the run stops instead."""


#: Branch-and-bound nodes the exact minimum may use per solve: a count, so every run decides alike.
NODE_LIMIT = 2000


# --------------------------------------------------------------------------------------------------
# Generic engine on cells + constraints
# --------------------------------------------------------------------------------------------------


def is_sensitive(values: np.ndarray, threshold: int, protect_zeros: bool) -> np.ndarray:
    """Counts 1..T are sensitive; 0 too when the policy protects zeros."""
    lowest = 0 if protect_zeros else 1
    return (values >= lowest) & (values <= threshold)


def protect_cells(
    values: Sequence[int] | np.ndarray,
    constraints: Sequence[Constraint],
    threshold: int,
    protect_zeros: bool = False,
    margin_level: Sequence[int] | np.ndarray | None = None,
    max_rounds: int = 200,
    method: str = "heuristic",
    time_limit: float = 60.0,
    node_limit: int = NODE_LIMIT,
    keep_hidden: np.ndarray | None = None,
    keep_shown: np.ndarray | None = None,
) -> CellSuppression:
    """Suppress sensitive cells and enough complements that the attacker LP cannot disclose them.

    ``keep_hidden`` and ``keep_shown`` carry the last release: cells it hid, and cells it published,
    whose values have not changed. The first stay hidden; the second stay published and never serve as
    complements, since anyone holding the last release knows them. Without this, a corrected month hid
    a cell the last release showed as the complement of a new small count, and the two releases together
    gave the count (a helper's 30 - 7 - 11 - 7 = 5 real-estate licenses).

    ``method``: heuristic (greedy complements, line by line); optimal (the exact minimum of the line
    rules from a HiGHS MILP when it is proven within ``node_limit`` nodes, else the heuristic); auto
    (both, keeping the pattern that hides fewer margins, weighed as below, then less count). The attacker audit runs on
    every result and adds complements until no small count can be worked out.

    ``margin_level`` gives each cell the number of dimensions it totals: 0 for an interior cell, 1 for
    a row or column total, 2 for the grand total of a two-way table. A hidden margin counts that many
    times, because hiding the grand total takes away the sum of the row totals and of the column totals
    at once (CT's handbook: "Totals are retained whenever possible").

    Cells that share no line (one week's table and the next, when no total runs over weeks) are
    protected apart, and nothing here depends on the clock: the same cells always get the same
    pattern, so a weekly release hides in last week's table what the last release hid. A pattern that
    changed between releases would let anyone holding both recover the counts. ``time_limit`` seconds
    is a safety stop that raises ``SuppressionTimeout``.
    """
    values = np.asarray(values, dtype=np.int64)
    if (values < 0).any():
        raise SuppressionInputError("counts must be zero or more")
    if method not in METHODS:
        raise SuppressionInputError(f"method must be one of {', '.join(METHODS)} (got '{method}')")
    levels = np.zeros(len(values), np.int64) if margin_level is None else np.asarray(margin_level, np.int64)
    none = np.zeros(len(values), bool)
    hidden_before = none if keep_hidden is None else np.asarray(keep_hidden, bool)
    shown_before = none if keep_shown is None else np.asarray(keep_shown, bool)
    shown_before = shown_before & ~is_sensitive(values, threshold, protect_zeros)
    deadline = time.perf_counter() + time_limit
    components = _components(len(values), constraints)
    try:
        parts = [
            _protect_component(
                values[cells],
                local,
                threshold,
                protect_zeros,
                levels[cells],
                max_rounds,
                method,
                node_limit,
                deadline,
                (hidden_before[cells], shown_before[cells]),
            )
            for cells, local in components
        ]
    except SuppressionTimeout:
        raise SuppressionTimeout(
            f"finding the fewest cells to hide took more than the {time_limit:g} s allowed; set "
            "protect.suppression.method: heuristic, or raise protect.suppression.time_limit"
        ) from None
    merged = CellSuppression(
        suppressed=np.zeros(len(values), bool),
        primary=np.zeros(len(values), bool),
        method=_merged_method(parts),
    )
    for (cells, _), part in zip(components, parts, strict=True):
        merged.suppressed[cells] = part.suppressed
        merged.primary[cells] = part.primary
        merged.failures += [
            AuditFailure(int(cells[f.cell]), f.value, f.attacker_min, f.attacker_max) for f in part.failures
        ]
        merged.lp_solves += part.lp_solves
        merged.audit_rounds = max(merged.audit_rounds, part.audit_rounds)
        merged.seconds_optimal += part.seconds_optimal
    return merged


def _components(n_cells: int, constraints: Sequence[Constraint]) -> list[tuple[np.ndarray, list[Constraint]]]:
    """Groups of cells linked by lines, each with its lines renumbered to the group's own cells, in the
    order of their first cell (so the same table always splits, and is solved, the same way)."""
    parent = list(range(n_cells))

    def root(cell: int) -> int:
        while parent[cell] != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    for line in constraints:
        top = root(line.total)
        for member in line.members:
            other = root(member)
            if other != top:
                parent[max(other, top)] = min(other, top)
                top = min(other, top)
    roots = np.array([root(c) for c in range(n_cells)], np.int64)
    groups: dict[int, list[int]] = {}
    for cell, group in enumerate(roots):
        groups.setdefault(int(group), []).append(cell)
    lines: dict[int, list[Constraint]] = {}
    for line in constraints:
        lines.setdefault(int(roots[line.total]), []).append(line)
    out = []
    for group, members in groups.items():
        cells = np.array(members, np.int64)
        position = {int(c): i for i, c in enumerate(members)}
        local = [
            Constraint(position[line.total], tuple(position[m] for m in line.members))
            for line in lines.get(group, [])
        ]
        out.append((cells, local))
    return out


def _merged_method(parts: list[CellSuppression]) -> str:
    """One word for the whole table: the single method used, or each one used, in a fixed order."""
    used = {p.method for p in parts} or {"heuristic"}
    order = ("optimal", "optimal+repair", "heuristic")
    return " and ".join(m for m in order if m in used)


def _protect_component(
    values: np.ndarray,
    constraints: list[Constraint],
    threshold: int,
    protect_zeros: bool,
    levels: np.ndarray,
    max_rounds: int,
    method: str,
    node_limit: int,
    deadline: float,
    before: tuple[np.ndarray, np.ndarray],
) -> CellSuppression:
    """``protect_cells`` for one group of linked cells; ``before`` is (keep_hidden, keep_shown)."""
    primary = is_sensitive(values, threshold, protect_zeros)
    hidden_before, shown = before
    lines_of = _lines_through_cells(len(values), constraints)
    exact, seconds = None, 0.0
    if method != "heuristic":
        from ct_pipelines.protect.optimal import optimal_pattern

        started = time.perf_counter()
        exact = optimal_pattern(
            values, constraints, primary | hidden_before, threshold, protect_zeros, levels, node_limit, deadline,
            shown, primary,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    candidates = []
    if exact is not None:
        state = CellSuppression(suppressed=exact.copy(), primary=primary, method="optimal")
        candidates.append(
            _audit_and_repair(
                state, values, constraints, levels, threshold, protect_zeros, lines_of, max_rounds, shown
            )
        )
    if exact is None or method == "auto":
        state = CellSuppression(suppressed=primary | hidden_before, primary=primary)
        _close_lines(values, constraints, state.suppressed, levels, threshold, protect_zeros, shown)
        candidates.append(
            _audit_and_repair(
                state, values, constraints, levels, threshold, protect_zeros, lines_of, max_rounds, shown
            )
        )
    best = min(candidates, key=lambda c: _cost(c, values, levels))
    best.seconds_optimal = seconds
    best.lp_solves = sum(c.lp_solves for c in candidates)
    return best


def _cost(state: CellSuppression, values: np.ndarray, levels: np.ndarray) -> tuple[int, int, int, int]:
    """Patterns compare by audit failures, then hidden margins weighed by level (CT keeps totals), hidden
    count, cells."""
    hidden = state.suppressed
    interior = levels == 0
    return (
        len(state.failures),
        int(levels[hidden].sum()),
        int(values[hidden & interior].sum()),
        int(hidden.sum()),
    )


def _audit_and_repair(
    state: CellSuppression,
    values: np.ndarray,
    constraints: Sequence[Constraint],
    levels: np.ndarray,
    threshold: int,
    protect_zeros: bool,
    lines_of: list[list[int]],
    max_rounds: int,
    shown: np.ndarray,
) -> CellSuppression:
    """Run the attacker LP audit and add complements near every disclosed cell until none is left; cells
    ``shown`` (published last release, unchanged) are never added."""
    suppressed = state.suppressed
    pending = np.flatnonzero(state.primary)
    for _ in range(max_rounds):
        state.audit_rounds += 1
        failures, solves = _audit(values, constraints, suppressed, pending, threshold)
        state.lp_solves += solves
        if not failures:
            state.failures = []
            return state
        added = False
        if state.method == "optimal":
            state.method = "optimal+repair"
        for failure in failures:
            added |= _add_complement_near(
                failure.cell, values, constraints, lines_of, suppressed, levels, shown
            )
        state.failures = failures
        if not added:
            return state  # nothing left to suppress; report the failures
        _close_lines(values, constraints, suppressed, levels, threshold, protect_zeros, shown)
        # Suppressing more only widens the attacker's intervals, so cells proven safe stay safe.
        pending = np.array([f.cell for f in failures])
    return state


def _lines_through_cells(n_cells: int, constraints: Sequence[Constraint]) -> list[list[int]]:
    lines: list[list[int]] = [[] for _ in range(n_cells)]
    for index, constraint in enumerate(constraints):
        lines[constraint.total].append(index)
        for member in constraint.members:
            lines[member].append(index)
    return lines


def _pick_complement(
    cells: Sequence[int],
    values: np.ndarray,
    suppressed: np.ndarray,
    levels: np.ndarray,
    allow_zero: bool,
    shown: np.ndarray,
) -> int | None:
    """The smallest non-zero unsuppressed cell, interior cells before margins (SDE practice), row and
    column totals before the grand total; never one the last release published (``shown``)."""
    best: tuple[int, int, int] | None = None
    for cell in cells:
        if suppressed[cell] or shown[cell] or (values[cell] == 0 and not allow_zero):
            continue
        key = (int(levels[cell]), int(values[cell]), int(cell))
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def _close_lines(
    values: np.ndarray,
    constraints: Sequence[Constraint],
    suppressed: np.ndarray,
    levels: np.ndarray,
    threshold: int,
    protect_zeros: bool,
    shown: np.ndarray,
) -> None:
    """Heuristic complements until no line has a lone suppressed cell or a too-narrow suppressed sum.

    A line with one suppressed cell gives it away by subtraction; a line with a published total whose
    suppressed members add up to at most T confines each of them to 0..T.
    """
    changed = True
    while changed:
        changed = False
        for constraint in constraints:
            cells = (constraint.total, *constraint.members)
            n_suppressed = int(suppressed[list(cells)].sum())
            if n_suppressed == 0:
                continue
            members = list(constraint.members)
            narrow = (
                not suppressed[constraint.total]
                and int(values[members][suppressed[members]].sum()) <= threshold
                and bool(suppressed[members].any())
            )
            if n_suppressed != 1 and not narrow:
                continue
            choice = _pick_complement(cells, values, suppressed, levels, protect_zeros, shown)
            if choice is None:
                choice = _pick_complement(cells, values, suppressed, levels, True, shown)
            if choice is not None:
                suppressed[choice] = True
                changed = True


def _add_complement_near(
    cell: int,
    values: np.ndarray,
    constraints: Sequence[Constraint],
    lines_of: list[list[int]],
    suppressed: np.ndarray,
    levels: np.ndarray,
    shown: np.ndarray,
) -> bool:
    """Suppress one more cell on a line through ``cell``, widening the search if those lines are used up."""
    seen_lines: set[int] = set()
    frontier = [cell]
    seen_cells = {cell}
    for allow_zero in (False, True):
        while frontier:
            neighbours: list[int] = []
            for current in frontier:
                for line in lines_of[current]:
                    if line in seen_lines:
                        continue
                    seen_lines.add(line)
                    neighbours.extend((constraints[line].total, *constraints[line].members))
            choice = _pick_complement(neighbours, values, suppressed, levels, allow_zero, shown)
            if choice is not None:
                suppressed[choice] = True
                return True
            frontier = [c for c in dict.fromkeys(neighbours) if c not in seen_cells]
            seen_cells.update(frontier)
        seen_lines.clear()
        frontier, seen_cells = [cell], {cell}
    return False


# --------------------------------------------------------------------------------------------------
# Attacker LP audit
# --------------------------------------------------------------------------------------------------


@dataclass
class _AttackerProblem:
    """Suppressed cells as unknowns; published cells moved to the right-hand side; x >= 0."""

    unknowns: np.ndarray  # cell index of each variable
    a_eq: sparse.csr_matrix
    b_eq: np.ndarray

    @classmethod
    def build(
        cls, values: np.ndarray, constraints: Sequence[Constraint], suppressed: np.ndarray
    ) -> _AttackerProblem:
        unknowns = np.flatnonzero(suppressed)
        column_of = np.full(len(values), -1)
        column_of[unknowns] = np.arange(len(unknowns))
        rows, cols, data, rhs = [], [], [], []
        for constraint in constraints:
            terms = [(constraint.total, -1.0)] + [(m, 1.0) for m in constraint.members]
            known = 0.0
            row_terms = []
            for cell, coefficient in terms:
                if suppressed[cell]:
                    row_terms.append((column_of[cell], coefficient))
                else:
                    known -= coefficient * values[cell]
            if not row_terms:
                continue
            row = len(rhs)
            for column, coefficient in row_terms:
                rows.append(row)
                cols.append(column)
                data.append(coefficient)
            rhs.append(known)
        a_eq = sparse.csr_matrix((data, (rows, cols)), shape=(len(rhs), len(unknowns)))
        return cls(unknowns, a_eq, np.asarray(rhs, dtype=float))

    def solve(self, objective: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
        if self.a_eq.shape[0] == 0:
            return None
        result = linprog(
            objective,
            A_eq=self.a_eq,
            b_eq=self.b_eq,
            bounds=np.column_stack([np.zeros(len(upper)), upper]),
            method="highs",
        )
        return result.x if result.status == 0 else None


def _audit(
    values: np.ndarray,
    constraints: Sequence[Constraint],
    suppressed: np.ndarray,
    cells: np.ndarray,
    threshold: int,
) -> tuple[list[AuditFailure], int]:
    """Cells (among ``cells``) whose attacker max is <= T or whose attacker min equals their value.

    Each LP solution is a feasible table, so it proves every cell it pushes above T (or below its
    value); solving for the sum of unproven cells first proves most cells with a handful of LPs.
    Variables of the cells being maximised are capped at T+1 so the LP stays bounded: reaching the
    cap proves "max > T", and not reaching it means the cap was not binding.
    """
    problem = _AttackerProblem.build(values, constraints, suppressed)
    if problem.a_eq.shape[0] == 0 or len(cells) == 0:
        return [], 0
    variable_of = {int(cell): i for i, cell in enumerate(problem.unknowns)}
    true_values = values[problem.unknowns].astype(float)
    solves = 0

    def prove(to_prove: set[int], maximise: bool) -> dict[int, float]:
        """Return the attacker bound for cells that could not be proven safe."""
        nonlocal solves
        remaining = set(to_prove)
        while remaining:  # batched: one LP for all remaining cells
            objective, upper = _objective(remaining, variable_of, len(problem.unknowns), maximise, threshold)
            solution = problem.solve(objective, upper)
            solves += 1
            proven = _proven(remaining, solution, variable_of, true_values, maximise, threshold)
            if not proven:
                break
            remaining -= proven
        bounds: dict[int, float] = {}
        for cell in sorted(remaining):  # one LP per cell that resisted the batch
            if cell not in remaining:
                continue
            objective, upper = _objective({cell}, variable_of, len(problem.unknowns), maximise, threshold)
            solution = problem.solve(objective, upper)
            solves += 1
            remaining -= _proven(remaining, solution, variable_of, true_values, maximise, threshold)
            if cell in remaining:
                bound = float(solution[variable_of[cell]]) if solution is not None else float("nan")
                bounds[cell] = bound
                remaining.discard(cell)
        return bounds

    sensitive = {int(c) for c in cells}
    unsafe_max = prove(sensitive, maximise=True)
    unsafe_min = prove({c for c in sensitive if values[c] > 0}, maximise=False)
    failures = [
        AuditFailure(
            cell=cell,
            value=int(values[cell]),
            attacker_min=unsafe_min.get(cell, 0.0),
            attacker_max=unsafe_max.get(cell, float(threshold + 1)),
        )
        for cell in sorted(set(unsafe_max) | set(unsafe_min))
    ]
    return failures, solves


def _objective(
    cells: set[int], variable_of: dict[int, int], n_variables: int, maximise: bool, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    objective = np.zeros(n_variables)
    upper = np.full(n_variables, np.inf)
    for cell in cells:
        variable = variable_of[cell]
        objective[variable] = -1.0 if maximise else 1.0
        if maximise:
            upper[variable] = threshold + 1.0
    return objective, upper


def _proven(
    cells: set[int],
    solution: np.ndarray | None,
    variable_of: dict[int, int],
    true_values: np.ndarray,
    maximise: bool,
    threshold: int,
) -> set[int]:
    if solution is None:
        return set()
    if maximise:
        return {c for c in cells if solution[variable_of[c]] > threshold + TOLERANCE}
    return {c for c in cells if solution[variable_of[c]] < true_values[variable_of[c]] - TOLERANCE}


def attacker_interval(
    values: Sequence[int] | np.ndarray, constraints: Sequence[Constraint], suppressed: np.ndarray, cell: int
) -> tuple[float, float]:
    """Exact attacker min and max of one suppressed cell (max may be inf); for reports and debugging."""
    values = np.asarray(values, dtype=np.int64)
    problem = _AttackerProblem.build(values, constraints, np.asarray(suppressed, bool))
    variable = int(np.flatnonzero(problem.unknowns == cell)[0])
    bounds = []
    for sign in (1.0, -1.0):
        objective = np.zeros(len(problem.unknowns))
        objective[variable] = sign
        if problem.a_eq.shape[0] == 0:
            bounds.append(0.0 if sign > 0 else float("inf"))
            continue
        result = linprog(objective, A_eq=problem.a_eq, b_eq=problem.b_eq, bounds=(0, None), method="highs")
        bounds.append(float(result.x[variable]) if result.status == 0 else float("inf"))
    return bounds[0], bounds[1]
