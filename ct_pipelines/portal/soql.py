"""A small SoQL compiler: the subset of ``$select``, ``$where``, ``$order`` and ``$group`` that
publishing and auditing scripts use, translated to DuckDB SQL.

Only tokens we recognised are emitted (identifiers are quoted, string literals re-escaped), so the
SQL cannot be injected into. Errors are :class:`PortalError` with Socrata's codes:
``query.compiler.malformed`` for syntax, ``query.soql.no-such-column`` for unknown fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ct_pipelines.core.sql import quote_ident
from ct_pipelines.portal.errors import PortalError

# field name -> Socrata dataTypeName, including the system fields
ColumnTypes = dict[str, str]

SYSTEM_FIELDS: ColumnTypes = {
    ":id": "row_identifier",
    ":created_at": "system_timestamp",
    ":updated_at": "system_timestamp",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<quoted>`[^`]+`)
  | (?P<name>:\*|[A-Za-z_:@][A-Za-z0-9_:@]*)
  | (?P<op><=|>=|!=|<>|\|\||[=<>(),*+\-/%])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "is", "null", "like", "in", "between", "true", "false", "as", "asc", "desc"}
_COMPARISONS = {"=", "!=", "<>", "<", "<=", ">", ">="}

# SoQL function -> (DuckDB function, result type; None = type of the first argument)
_FUNCTIONS: dict[str, tuple[str, str | None]] = {
    "upper": ("upper", "text"),
    "lower": ("lower", "text"),
    "starts_with": ("starts_with", "checkbox"),
    "contains": ("contains", "checkbox"),
    "length": ("length", "number"),
    "abs": ("abs", "number"),
    "round": ("round", "number"),
    "date_trunc_y": ("date_trunc", "calendar_date"),
    "date_trunc_ym": ("date_trunc", "calendar_date"),
    "date_trunc_ymd": ("date_trunc", "calendar_date"),
    "count": ("count", "number"),
    "sum": ("sum", "number"),
    "avg": ("avg", "number"),
    "min": ("min", None),
    "max": ("max", None),
}
_AGGREGATES = {"count", "sum", "avg", "min", "max"}
_TRUNC_PART = {"date_trunc_y": "year", "date_trunc_ym": "month", "date_trunc_ymd": "day"}


@dataclass(frozen=True)
class Token:
    kind: str  # string | number | name | op | end
    text: str
    position: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "name" and self.text.lower() in words


@dataclass(frozen=True)
class Expr:
    """Compiled expression: DuckDB SQL, its SoQL type, a default output name, whether it aggregates."""

    sql: str
    soql_type: str
    name: str
    aggregate: bool = False


@dataclass(frozen=True)
class SelectItem:
    sql: str
    soql_type: str
    name: str
    aggregate: bool


def malformed(message: str, parameter: str, position: int | None = None) -> PortalError:
    data: dict[str, object] = {"parameter": parameter}
    if position is not None:
        data["position"] = {"column": position + 1}
    return PortalError(400, "query.compiler.malformed", message, data)


def no_such_column(name: str, parameter: str) -> PortalError:
    return PortalError(
        400, "query.soql.no-such-column", f"No such column: {name}", {"column": name, "parameter": parameter}
    )


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def tokenize(text: str, parameter: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise malformed(
                f"Could not parse {parameter} near {text[position : position + 20]!r}", parameter, position
            )
        kind = match.lastgroup or ""
        if kind != "ws":
            value = match.group()
            if kind == "quoted":
                kind, value = "name", value[1:-1]
            elif kind == "string":
                value = value[1:-1].replace("''", "'")
            tokens.append(Token(kind, value, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over one SoQL clause; precedence OR < AND < NOT < predicate < arithmetic."""

    def __init__(self, text: str, columns: ColumnTypes, parameter: str) -> None:
        self.tokens = tokenize(text, parameter)
        self.index = 0
        self.columns = columns
        self.parameter = parameter

    # -- token helpers -------------------------------------------------------------------------
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept_op(self, *ops: str) -> Token | None:
        if self.current.kind == "op" and self.current.text in ops:
            return self.advance()
        return None

    def accept_keyword(self, *words: str) -> Token | None:
        if self.current.is_keyword(*words):
            return self.advance()
        return None

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            self.fail(f"expected '{op}'")

    def fail(self, what: str) -> None:
        token = self.current
        found = "end of input" if token.kind == "end" else repr(token.text)
        raise malformed(
            f"Could not parse {self.parameter}: {what} but found {found}", self.parameter, token.position
        )

    def at_end(self) -> bool:
        return self.current.kind == "end"

    # -- grammar -------------------------------------------------------------------------------
    def expression(self) -> Expr:
        left = self.conjunction()
        while self.accept_keyword("or"):
            right = self.conjunction()
            left = Expr(f"({left.sql} OR {right.sql})", "checkbox", "or", left.aggregate or right.aggregate)
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.accept_keyword("and"):
            right = self.negation()
            left = Expr(f"({left.sql} AND {right.sql})", "checkbox", "and", left.aggregate or right.aggregate)
        return left

    def negation(self) -> Expr:
        if self.accept_keyword("not"):
            inner = self.negation()
            return Expr(f"(NOT {inner.sql})", "checkbox", "not", inner.aggregate)
        return self.predicate()

    def predicate(self) -> Expr:
        left = self.additive()
        if op := self.accept_op(*_COMPARISONS):
            right = self.additive()
            sql_op = "!=" if op.text == "<>" else op.text
            return Expr(
                f"({left.sql} {sql_op} {right.sql})", "checkbox", "compare", left.aggregate or right.aggregate
            )
        if self.accept_keyword("is"):
            negate = bool(self.accept_keyword("not"))
            if not self.accept_keyword("null"):
                self.fail("expected NULL after IS")
            return Expr(
                f"({left.sql} IS {'NOT ' if negate else ''}NULL)", "checkbox", "is_null", left.aggregate
            )
        negate = bool(self.accept_keyword("not"))
        if self.accept_keyword("like"):
            pattern = self.additive()
            text_sql = left.sql if left.soql_type == "text" else f"CAST({left.sql} AS VARCHAR)"
            return Expr(f"({text_sql} {'NOT ' if negate else ''}LIKE {pattern.sql})", "checkbox", "like")
        if self.accept_keyword("in"):
            self.expect_op("(")
            items = [self.additive()]
            while self.accept_op(","):
                items.append(self.additive())
            self.expect_op(")")
            listed = ", ".join(item.sql for item in items)
            return Expr(f"({left.sql} {'NOT ' if negate else ''}IN ({listed}))", "checkbox", "in")
        if self.accept_keyword("between"):
            low = self.additive()
            if not self.accept_keyword("and"):
                self.fail("expected AND in BETWEEN")
            high = self.additive()
            sql = f"({left.sql} {'NOT ' if negate else ''}BETWEEN {low.sql} AND {high.sql})"
            return Expr(sql, "checkbox", "between")
        if negate:
            self.fail("expected LIKE, IN or BETWEEN after NOT")
        return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while op := self.accept_op("+", "-", "||"):
            right = self.multiplicative()
            result_type = "text" if op.text == "||" else "number"
            left = Expr(
                f"({left.sql} {op.text} {right.sql})",
                result_type,
                left.name,
                left.aggregate or right.aggregate,
            )
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while op := self.accept_op("*", "/", "%"):
            right = self.unary()
            left = Expr(
                f"({left.sql} {op.text} {right.sql})", "number", left.name, left.aggregate or right.aggregate
            )
        return left

    def unary(self) -> Expr:
        if self.accept_op("-"):
            inner = self.unary()
            return Expr(f"(-{inner.sql})", "number", inner.name, inner.aggregate)
        return self.primary()

    def primary(self) -> Expr:
        token = self.current
        if self.accept_op("("):
            inner = self.expression()
            self.expect_op(")")
            return inner
        if token.kind == "string":
            self.advance()
            return Expr(quote_literal(token.text), "text", "literal")
        if token.kind == "number":
            self.advance()
            return Expr(token.text, "number", "literal")
        if token.kind == "name":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                self.advance()
                return Expr(lowered.upper(), "checkbox", "literal")
            if lowered == "null":
                self.advance()
                return Expr("NULL", "null", "literal")
            if lowered in _KEYWORDS:
                self.fail("expected a value or column")
            self.advance()
            if self.accept_op("("):
                return self.function(token)
            return self.column(token)
        self.fail("expected a value or column")
        raise AssertionError("unreachable")

    def column(self, token: Token) -> Expr:
        name = self.resolve(token.text)
        return Expr(quote_ident(name), self.columns[name], name)

    def resolve(self, name: str) -> str:
        if name in self.columns:
            return name
        lowered = name.lower()
        if lowered in self.columns:
            return lowered
        raise no_such_column(name, self.parameter)

    def function(self, token: Token) -> Expr:
        name = token.text.lower()
        if name not in _FUNCTIONS:
            raise PortalError(
                400,
                "query.soql.no-such-function",
                f"No such function: {token.text}",
                {"function": token.text, "parameter": self.parameter},
            )
        duck_name, result_type = _FUNCTIONS[name]
        if name == "count" and self.accept_op("*"):
            self.expect_op(")")
            return Expr("count(*)", "number", "count", aggregate=True)
        args = [] if self.current.kind == "op" and self.current.text == ")" else [self.expression()]
        while self.accept_op(","):
            args.append(self.expression())
        self.expect_op(")")
        if not args:
            self.fail(f"{name}() needs an argument")
        arg_sql = ", ".join(arg.sql for arg in args)
        if name in _TRUNC_PART:
            arg_sql = f"{quote_literal(_TRUNC_PART[name])}, {args[0].sql}"
        if name == "avg":
            arg_sql = f"CAST({args[0].sql} AS DOUBLE)"
        output_name = f"{name}_{args[0].name}" if args[0].name not in ("literal", "compare") else name
        return Expr(
            f"{duck_name}({arg_sql})",
            result_type or args[0].soql_type,
            output_name,
            aggregate=name in _AGGREGATES or any(arg.aggregate for arg in args),
        )


def compile_where(text: str, columns: ColumnTypes, parameter: str = "$where") -> str:
    parser = _Parser(text, columns, parameter)
    expr = parser.expression()
    if not parser.at_end():
        parser.fail("expected AND, OR or the end of the condition")
    return expr.sql


def _split_items(parser: _Parser) -> None:
    if not parser.accept_op(","):
        parser.fail("expected ',' or the end of the list")


def compile_select(text: str, columns: ColumnTypes, user_fields: list[str]) -> list[SelectItem]:
    """``*`` expands to the dataset's columns, ``:*`` to the system fields; ``expr AS alias`` renames."""
    parser = _Parser(text, columns, "$select")
    items: list[SelectItem] = []
    while True:
        token = parser.current
        if token.kind == "op" and token.text == "*":
            parser.advance()
            items.extend(SelectItem(quote_ident(f), columns[f], f, False) for f in user_fields)
        elif token.kind == "name" and token.text == ":*":
            parser.advance()
            items.extend(SelectItem(quote_ident(f), t, f, False) for f, t in SYSTEM_FIELDS.items())
        else:
            expr = parser.expression()
            name = expr.name
            if parser.accept_keyword("as"):
                alias = parser.advance()
                if alias.kind != "name":
                    parser.fail("expected an alias after AS")
                name = alias.text
            items.append(SelectItem(expr.sql, expr.soql_type, name, expr.aggregate))
        if parser.at_end():
            break
        _split_items(parser)
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise malformed(
                f"Could not parse $select: the output name {item.name!r} is used twice", "$select"
            )
        seen.add(item.name)
    return items


def compile_order(text: str, columns: ColumnTypes, select_aliases: dict[str, str]) -> str:
    """``expr [ASC|DESC]`` list; aliases from ``$select`` may be used, as in Socrata."""
    parser = _Parser(text, {**columns, **dict.fromkeys(select_aliases, "text")}, "$order")
    parts: list[str] = []
    while True:
        token = parser.current
        if token.kind == "name" and token.text in select_aliases and token.text not in columns:
            parser.advance()
            sql = select_aliases[token.text]
        else:
            sql = parser.expression().sql
        direction = "ASC"
        if word := parser.accept_keyword("asc", "desc"):
            direction = word.text.upper()
        parts.append(f"{sql} {direction} NULLS {'LAST' if direction == 'ASC' else 'FIRST'}")
        if parser.at_end():
            break
        _split_items(parser)
    return ", ".join(parts)


def compile_group(text: str, columns: ColumnTypes) -> str:
    parser = _Parser(text, columns, "$group")
    parts = [parser.expression().sql]
    while not parser.at_end():
        _split_items(parser)
        parts.append(parser.expression().sql)
    return ", ".join(parts)
