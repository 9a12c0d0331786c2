"""The one scan of the validate stage: raw text in, typed table out, every row rule flagged on the way.

One ``CREATE TABLE ... AS SELECT`` reads each raw cell once and writes the valid table's columns with a
few helper columns, which the rest of the stage reads instead of the data (a very wide extract is
scanned in slices of columns, each a stored table, then put side by side):

* ``__m<k>`` (UBIGINT): bit i is set when the row breaks rule 64k+i (every rule but window rules);
* ``__t<k>``: bit j is set when null-token column 64k+j held a null token (the quirk counts);
* ``__texts``: the cleaned text of every ruled column, on rows breaking a rule only (quarantine values);
* ``x__text`` of columns with a window rule (unique), which needs the whole column and runs afterwards.

Masks rather than one column per rule keep a 3,000-column extract's table narrow; the text list is
built only where a rule fails, so a clean row costs its casts and a few bit operations. A declared
column's empty cells are counted afterwards from what is already there: its NULLs less null tokens,
suppressed cells and cells that did not parse (the type rules' failures).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ct_pipelines.catalog.models import ColumnType, Dataset
from ct_pipelines.core.sql import quote_ident
from ct_pipelines.validate.gx_suite import MASK
from ct_pipelines.validate.parsing import cast_sql, column_quirks, sql_in
from ct_pipelines.validate.rules import ROW_CONTENT, TEXT_SUFFIX, UNIQUE_KEY, Rule

ROW_COLUMNS = ("_row", "_line")
WORD = 64  # bits in one UBIGINT helper column
COLUMNS_PER_SCAN = 256
TEXTS = "__texts"


def _words(prefix: str, conditions: list[str]) -> list[tuple[str, str]]:
    """(name, expression) of UBIGINT columns whose bits are the conditions (NULL: 0), 64 to a column."""
    out = []
    for k in range(0, len(conditions), WORD):
        bits = [
            f"CASE WHEN {cond} THEN CAST({1 << j} AS UBIGINT) ELSE CAST(0 AS UBIGINT) END"
            for j, cond in enumerate(conditions[k : k + WORD])
        ]
        out.append((f"{prefix}{k // WORD}", " | ".join(bits)))
    return out


@dataclass
class ScanPlan:
    """One scan: the raw columns it reads and writes, its rules, and where each helper bit comes from."""

    columns: list[str]  # raw columns in the raw table's order, ``_row`` and ``_line`` included
    mask_rules: list[Rule]  # in bit order
    window_rules: list[Rule]
    text_index: dict[str, int]  # ruled column -> 1-based position in __texts (absent: pii, masked)
    token_columns: list[str]  # columns with null tokens in __t bit order
    suppressed: dict[str, str]  # column -> its suppression flag column
    pii: set[str]
    declared: set[str]
    same_text: set[str]  # columns whose typed value is their cleaned text (text, code without width)
    select: str = ""
    helpers: list[str] = field(default_factory=list)

    @property
    def data_columns(self) -> list[str]:
        return [c for c in self.columns if c not in ROW_COLUMNS]

    def masks(self) -> list[str]:
        return [f"__m{k}" for k in range((len(self.mask_rules) + WORD - 1) // WORD)]

    def counts(self) -> list[tuple[str, str, str]]:
        """(kind, column, aggregate over the written table) for the per-column counts the stage reports.

        ``null``: a declared column's NULLs (empty, null token, suppressed or not parsed); ``empty``: an
        undeclared column's empty cells, which it keeps as sent.
        """
        out = [
            ("null", c, f"count_if({quote_ident(c)} IS NULL)")
            if c in self.declared
            else ("empty", c, f"count_if(NULLIF(trim({quote_ident(c)}), '') IS NULL)")
            for c in self.data_columns
        ]
        out += [
            ("null_tokens", c, f"sum(CAST((__t{j // WORD} >> {j % WORD}) & 1 AS BIGINT))")
            for j, c in enumerate(self.token_columns)
        ]
        out += [("suppressed", c, f"count_if({quote_ident(flag)})") for c, flag in self.suppressed.items()]
        return out

    def catalog_rows(self) -> list[list]:
        """Columns of the rule catalog that failure_inserts joins: bit, group, rule, column, reason, ..."""
        rules = self.mask_rules
        return [
            list(range(len(rules))),
            [r.group for r in rules],
            [r.rule for r in rules],
            [r.column for r in rules],
            [r.phrase for r in rules],
            [r.severity.value for r in rules],
            [self.text_index.get(r.column, 0) for r in rules],
        ]


def plan_scans(
    dataset: Dataset, rules: list[Rule], raw_columns: list[str], raw_ref: str, *, in_order: bool = False
) -> list[ScanPlan]:
    """One scan per COLUMNS_PER_SCAN data columns (one for most extracts); each reads only its columns.
    ``in_order``: ``raw_ref`` is read in ``_row`` order already, so the scans need not sort (a sort of the
    whole extract under the 1 GB memory cap spills: 6 s of a 5M-row scan).

    DuckDB's planning and per-thread set-up grow with the size of one statement, and a 3,000-column
    SELECT also holds its whole plan in memory; slices keep both bounded, so the cost stays linear.
    """
    data = [c for c in raw_columns if c not in ROW_COLUMNS]
    per_scan = COLUMNS_PER_SCAN
    slices = [set(data[i : i + per_scan]) for i in range(0, len(data), per_scan)] or [set()]
    return [
        _plan(
            dataset,
            [r for r in rules if r.column in part],
            [c for c in raw_columns if c in ROW_COLUMNS or c in part],
            raw_ref,
            in_order,
        )
        for part in slices
    ]


def combine_sql(plans: list[ScanPlan], tables: list[str], raw_columns: list[str]) -> str:
    """The scans' written columns side by side, in the raw table's order (every scan is sorted by _row)."""
    owner = {c: k for k, plan in enumerate(plans) for c in plan.data_columns}
    items = [f"s{owner.get(c, 0)}.{quote_ident(c)}" for c in raw_columns]
    items += [f"s{k}.{quote_ident(f)}" for k, plan in enumerate(plans) for f in plan.suppressed.values()]
    joined = " POSITIONAL JOIN ".join(f"{table} AS s{k}" for k, table in enumerate(tables))
    return f"SELECT {', '.join(items)} FROM {joined}"


def _plan(dataset: Dataset, rules: list[Rule], columns: list[str], raw_ref: str, in_order: bool) -> ScanPlan:
    """The scan's SELECT, in five projections so no expression is written (or evaluated) twice.

    1. each declared cell trimmed once; 2. null tokens and suppression markers turned into NULL
    (``x__text``), flags and null-token bits; 3. casts; 4. rule masks; 5. the written columns in the
    raw table's order, sorted by ``_row``. Undeclared columns pass through unchanged (VARCHAR).
    """
    declared = {c.field_name: c for c in dataset.columns}
    pii = set(dataset.pii_fields)
    mask_rules = [r for r in rules if not r.window]
    texted = [c for c in dict.fromkeys(r.column for r in mask_rules) if c not in pii]
    data = [c for c in columns if c not in ROW_COLUMNS]
    plan = ScanPlan(
        columns=columns,
        mask_rules=mask_rules,
        window_rules=[r for r in rules if r.window],
        text_index={c: i + 1 for i, c in enumerate(texted)},
        token_columns=[c for c in data if c in declared and column_quirks(dataset, declared[c]).null_values],
        suppressed={
            c: declared[c].suppressed_flag
            for c in data
            if c in declared and column_quirks(dataset, declared[c]).suppressed_values
        },
        pii=pii,
        declared=set(declared),
        same_text={
            c.field_name
            for c in dataset.columns
            if c.type == ColumnType.TEXT or (c.type == ColumnType.CODE and c.width is None)
        },
    )
    plan.select = _select_sql(dataset, plan, raw_ref, texted, in_order)
    return plan


def _select_sql(dataset: Dataset, plan: ScanPlan, raw_ref: str, texted: list[str], in_order: bool) -> str:
    declared = {c.field_name: c for c in dataset.columns}
    data = plan.data_columns
    trims = [
        f"NULLIF(trim({quote_ident(c)}), '') AS {quote_ident(c)}" if c in declared else quote_ident(c)
        for c in plan.columns
    ]
    casts = "".join(
        f", {cast_sql(declared[c], quote_ident(c + TEXT_SUFFIX))} AS {quote_ident(c)}"
        for c in data
        if c in declared
    )
    masks = "".join(f", {expr} AS {name}" for name, expr in _words("__m", [r.sql for r in plan.mask_rules]))
    window_columns = dict.fromkeys(r.column for r in plan.window_rules)
    window_texts = [c + TEXT_SUFFIX for c in window_columns if c not in plan.same_text]
    texts = ", ".join(quote_ident(c + TEXT_SUFFIX) for c in texted)
    plan.helpers = plan.masks() + [name for name, _ in _words("__t", plan.token_columns)] + window_texts
    written = [quote_ident(c) for c in plan.columns] + [quote_ident(f) for f in plan.suppressed.values()]
    if texted:
        written.append(f"CASE WHEN ({' | '.join(plan.masks())}) <> 0 THEN [{texts}] END AS {TEXTS}")
        plan.helpers.append(TEXTS)
    sql = f"SELECT {', '.join(trims)} FROM {raw_ref}"
    sql = f"SELECT {', '.join(_clean_level(dataset, plan.columns, declared, plan))} FROM ({sql})"
    sql = f"SELECT *{casts} FROM ({sql})"
    sql = f"SELECT *{masks} FROM ({sql})"
    helpers = [quote_ident(h) for h in plan.helpers if h != TEXTS]
    return f"SELECT {', '.join(written + helpers)} FROM ({sql})" + ("" if in_order else " ORDER BY _row")


def _clean_level(dataset: Dataset, raw_columns: list[str], declared: dict, plan: ScanPlan) -> list[str]:
    """Level 2: cleaned text, suppression flags and the null-token bits."""
    out: list[str] = []
    token: list[str] = []
    for name in raw_columns:
        ref = quote_ident(name)
        column = declared.get(name)
        if column is None:
            out.append(ref)
            continue
        quirks = column_quirks(dataset, column)
        tokens = quirks.null_values + quirks.suppressed_values
        cleaned = f"CASE WHEN lower({ref}) IN {sql_in(tokens)} THEN NULL ELSE {ref} END" if tokens else ref
        out.append(f"{cleaned} AS {quote_ident(name + TEXT_SUFFIX)}")
        if quirks.null_values:
            token.append(f"coalesce(lower({ref}) IN {sql_in(quirks.null_values)}, FALSE)")
        if quirks.suppressed_values:
            flag = quote_ident(plan.suppressed[name])
            out.append(f"coalesce(lower({ref}) IN {sql_in(quirks.suppressed_values)}, FALSE) AS {flag}")
    out += [f"{expr} AS {name}" for name, expr in _words("__t", token)]
    return out


CATALOG_SQL = (
    "CREATE OR REPLACE TEMP TABLE {catalog} AS SELECT unnest(?::BIGINT[]) AS i, unnest(?::VARCHAR[]) AS "
    "rule_group, unnest(?::VARCHAR[]) AS rule, unnest(?::VARCHAR[]) AS column_name, unnest(?::VARCHAR[]) "
    "AS reason, unnest(?::VARCHAR[]) AS severity, unnest(?::BIGINT[]) AS text_index"
)


def failure_inserts(plan: ScanPlan, table: str, failures: str, catalog: str) -> list[tuple[str, list]]:
    """(SQL, parameters) that list every (row, rule) failure into ``failures`` from the written table.

    Mask rules: the set bits of failing rows only, joined to the rule catalog (one row per rule, ``i``
    its bit); window rules: one windowed query each over the columns it needs.
    """
    statements: list[tuple[str, list]] = []
    masks = plan.masks()
    if masks:
        words = f"[{', '.join(masks)}]"
        bits = (
            f"unnest(list_filter(range({len(plan.mask_rules)}), "
            f"lambda i: ((list_extract({words}, i // {WORD} + 1) >> (i % {WORD})) & 1) = 1))"
        )
        texts = f"list_extract(f.{TEXTS}, r.text_index)" if plan.text_index else "NULL"
        statements.append(
            (
                f"INSERT INTO {failures} SELECT f._row, f._line, r.rule_group, r.rule, r.column_name, "
                f"CASE WHEN r.text_index = 0 THEN '{MASK}' ELSE {texts} END, r.reason, r.severity "
                f"FROM (SELECT _row, _line, {TEXTS if plan.text_index else 'NULL'} AS {TEXTS}, {bits} AS i "
                f"FROM {table} WHERE ({' | '.join(masks)}) <> 0) AS f JOIN {catalog} AS r ON r.i = f.i",
                [],
            )
        )
    for rule in plan.window_rules:
        text = quote_ident(rule.column + TEXT_SUFFIX)
        value = f"'{MASK}'" if rule.column in plan.pii else text
        if rule.column not in plan.same_text:
            source = table
        elif rule.rule == UNIQUE_KEY:  # compares the rows' other columns too
            source = f"(SELECT *, {quote_ident(rule.column)} AS {text} FROM {table})"
        else:  # a text column was written once, as itself
            source = f"(SELECT _row, _line, {quote_ident(rule.column)}, {quote_ident(rule.column)} AS {text} FROM {table})"
        others = [quote_ident(c) for c in plan.data_columns if c != rule.column]  # this scan's columns
        broken = rule.sql.replace(ROW_CONTENT, f"hash({', '.join(others)})" if others else "0")
        statements.append(
            (
                f"INSERT INTO {failures} SELECT _row, _line, ?, ?, ?, v, ?, ? FROM (SELECT _row, _line, "
                f"CAST({value} AS VARCHAR) AS v, {broken} AS broken FROM {source}) WHERE broken",
                [rule.group, rule.rule, rule.column, rule.phrase, rule.severity.value],
            )
        )
    return statements
