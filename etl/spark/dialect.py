"""DuckDB SQL (the one dialect of ``queries/``) -> Spark SQL: sqlglot plus a few tested rules.

The queries are written once, for DuckDB, with ``$name`` parameters. For Spark they are parsed
with sqlglot (read as DuckDB, with ``len()`` meaning list length) and each rule in
:data:`RULES` -- a pure function from one expression node to its replacement -- is applied to
every node before the tree is written as Spark SQL. The rules cover the places where the two
engines give different answers for the same text (each was measured):

* ``x[i]``: DuckDB gives NULL for an index out of range; Spark 4 (ANSI mode) raises.
  -> ``try_element_at(x, i)`` (1-based like DuckDB).
* ``len(list)``: sqlglot writes ``LENGTH()``, which Spark only takes for strings. -> ``size()``
  (``length()`` stays the string length; ``len()`` in ``queries/`` means a list).
* ``date_diff('day', a, b)``: DuckDB counts calendar-day boundaries, Spark's ``DATEDIFF(DAY,``
  whole 24-hour periods. -> ``datediff(CAST(b AS DATE), CAST(a AS DATE))``.
* ``date_diff('year' | 'quarter' | 'month' | 'week' | 'hour' | ..., a, b)``: the same for larger
  and smaller parts (an age!). -> ``timestampdiff(PART, date_trunc('part', a),
  date_trunc('part', b))``: whole parts between the truncated values = boundaries crossed.
* ``date_sub('part', a, b)`` (DuckDB's 3-argument form, whole parts elapsed) passes through
  sqlglot untranslated and means something else in Spark. -> ``timestampdiff(PART, a, b)``.
* ``a / b``: DuckDB gives +-inf (NaN for 0/0) for a zero divisor; Spark (ANSI) raises.
  -> ``CASE WHEN b = 0 THEN a * inf ELSE try_divide(a, b) END``.
* ``string_agg(DISTINCT x, sep)`` has no defined order in either engine. -> on Spark the values
  sorted (``array_join(array_sort(collect_set(x)), sep)``); parity tests compare such columns
  as sets.
* ``fhir_date_lo(t)`` / ``fhir_date_hi(t)`` (DuckDB temporary macros, etl/viewdef/macros.py)
  do not exist on Spark. -> their DuckDB body inlined, then translated by the other rules.
* ``TRY_CAST(x AS DATE)``: Spark reads '2019' and '2019-03' as their first day, DuckDB gives
  NULL. -> the cast only when the text is a full year-month-day (:data:`_DATE_TEXT`).

Anything the rules cannot translate faithfully raises :class:`DialectError` with the line and
column (a lint, not a silent difference): a ``date_diff``/``date_sub`` part that is not a
string literal, or a part these rules do not know.

Parameters ``$name`` become Spark's named parameter markers ``:name``; values are bound by
``spark.sql(text, args=...)``, never written into the SQL.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB


class DialectError(ValueError):
    """A query uses something the Spark translation cannot reproduce exactly."""


class BmcDuckDB(DuckDB):
    """DuckDB as ``queries/`` write it: ``len(x)`` is a list's length (``length(s)`` a string's).

    Indexes are kept as written (``INDEX_OFFSET`` 0 here, so sqlglot does not shift them):
    :func:`rule_array_index` turns each into a 1-based ``try_element_at``."""

    INDEX_OFFSET = 0

    class Parser(DuckDB.Parser):
        FUNCTIONS: ClassVar[dict] = {
            **DuckDB.Parser.FUNCTIONS,
            "LEN": lambda args: exp.ArraySize(this=seq_get(args, 0)),
            "ARRAY_LENGTH": lambda args: exp.ArraySize(this=seq_get(args, 0)),
        }


def seq_get(args: list, i: int):
    return args[i] if i < len(args) else None


_DAY_LIKE = {"day", "days", "d", "dayofmonth"}
_PARTS = {
    "year": "YEAR", "years": "YEAR", "y": "YEAR", "yr": "YEAR", "yrs": "YEAR",
    "quarter": "QUARTER", "quarters": "QUARTER",
    "month": "MONTH", "months": "MONTH", "mon": "MONTH",
    "week": "WEEK", "weeks": "WEEK", "w": "WEEK",
    "hour": "HOUR", "hours": "HOUR", "h": "HOUR",
    "minute": "MINUTE", "minutes": "MINUTE", "min": "MINUTE", "m": "MINUTE",
    "second": "SECOND", "seconds": "SECOND", "s": "SECOND", "sec": "SECOND",
}


def _where(node: exp.Expression) -> str:
    for sub in node.walk():
        line, col = sub.meta.get("line"), sub.meta.get("col")
        if line is not None:
            return f"line {line}, column {col}"
    return "(position unknown)"


def _part_of(node: exp.Expression, unit: exp.Expression | None, fn: str) -> str:
    if isinstance(unit, exp.Literal) and unit.is_string:
        text = unit.this.lower()
    elif isinstance(unit, exp.Var | exp.Column | exp.Identifier):
        text = unit.name.lower()
    else:
        raise DialectError(f"{fn} at {_where(node)}: the part must be a string literal "
                           f"('day', 'year', ...) to translate it for Spark")
    if text in _DAY_LIKE:
        return "DAY"
    if text not in _PARTS:
        raise DialectError(f"{fn} at {_where(node)}: part '{text}' has no Spark translation "
                           f"here; use one of day, week, month, quarter, year, hour, minute, "
                           f"second")
    return _PARTS[text]


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _cast_date(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e.copy(), to=exp.DataType.build("DATE"))


def _boundaries(part: str, start: exp.Expression, end: exp.Expression) -> exp.Expression:
    """Boundaries of ``part`` crossed from ``start`` to ``end`` (DuckDB's date_diff)."""
    if part == "DAY":
        return _fn("datediff", _cast_date(end), _cast_date(start))
    lit = exp.Literal.string(part.lower())
    return _fn("timestampdiff", exp.Var(this=part), _fn("date_trunc", lit, start.copy()),
               _fn("date_trunc", lit.copy(), end.copy()))


# --- rules: node -> node -------------------------------------------------------------------

def rule_array_index(node: exp.Expression) -> exp.Expression:
    """``x[i]`` -> ``try_element_at(x, i)``: NULL out of range, as in DuckDB."""
    if not isinstance(node, exp.Bracket):
        return node
    index = node.expressions[0] if len(node.expressions) == 1 else None
    if index is None or isinstance(index, exp.Slice):
        raise DialectError(f"list slice at {_where(node)}: no exact Spark translation here; "
                           f"use substr() for text or list_slice() for lists")
    if isinstance(index, exp.Literal) and index.is_string:
        return node  # a map or struct key, not a position
    return _fn("try_element_at", node.this.copy(), index.copy())


def rule_date_diff(node: exp.Expression) -> exp.Expression:
    """DuckDB ``date_diff(part, a, b)`` counts boundaries; Spark whole periods."""
    if isinstance(node, exp.DateDiff):
        # sqlglot's DateDiff: this = end, expression = start, unit = part
        part = _part_of(node, node.args.get("unit"), "date_diff")
        return _boundaries(part, node.expression, node.this)
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("date_diff", "datediff") \
            and len(node.expressions) == 3:
        unit, start, end = node.expressions
        return _boundaries(_part_of(node, unit, "date_diff"), start, end)
    return node


def rule_date_sub(node: exp.Expression) -> exp.Expression:
    """DuckDB ``date_sub(part, a, b)`` (whole parts elapsed) -> ``timestampdiff``."""
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("date_sub", "datesub") \
            and len(node.expressions) == 3:
        unit, start, end = node.expressions
        part = _part_of(node, unit, "date_sub")
        return _fn("timestampdiff", exp.Var(this=part), start.copy(), end.copy())
    return node


def rule_divide(node: exp.Expression) -> exp.Expression:
    """``a / b``: DuckDB gives +-inf (NaN for 0/0) for a zero divisor; Spark (ANSI) raises.
    -> ``CASE WHEN b = 0 THEN a * inf ELSE try_divide(a, b) END`` (the same values)."""
    if isinstance(node, exp.Div):
        a, b = node.this, node.expression
        inf = exp.Cast(this=exp.Literal.string("Infinity"), to=exp.DataType.build("DOUBLE"))
        on_zero = exp.Mul(this=exp.Cast(this=a.copy(), to=exp.DataType.build("DOUBLE")),
                          expression=inf)
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=b.copy(), expression=exp.Literal.number(0)),
                                    true=on_zero)],
                        default=_fn("try_divide", a.copy(), b.copy()))
    return node


def rule_string_agg_distinct(node: exp.Expression) -> exp.Expression:
    """``string_agg(DISTINCT x, sep)`` -> the distinct values sorted, joined by ``sep``."""
    if not isinstance(node, exp.GroupConcat):
        return node
    inner = node.this
    if isinstance(inner, exp.Order) and isinstance(inner.this, exp.Distinct):
        keys = inner.expressions
        if not (len(keys) == 1 and not keys[0].args.get("desc")
                and keys[0].this == inner.this.expressions[0]):
            return node  # ordered by something else: sqlglot's LISTAGG ... WITHIN GROUP
        inner = inner.this
    if isinstance(inner, exp.Distinct):
        values = inner.expressions
        if len(values) != 1:
            raise DialectError(f"string_agg at {_where(node)}: DISTINCT over one value only")
        sep = node.args.get("separator") or exp.Literal.string(",")
        return _fn("array_join", _fn("array_sort", _fn("collect_set", values[0].copy())),
                   sep.copy())
    return node


def rule_parameter(node: exp.Expression) -> exp.Expression:
    """``$name`` -> the named marker ``:name`` (bound by ``spark.sql(..., args=...)``)."""
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Var | exp.Identifier):
        return exp.Placeholder(this=node.this.name)
    return node


# --- rules the compiled ViewDefinitions need (etl/viewdef -> etl/spark/views.py) -----------

def _lambda(body: exp.Expression, *names: str) -> exp.Expression:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(n) for n in names])


def _var(name: str) -> exp.Expression:
    return exp.column(name)


def _is_index_series(node: exp.Expression) -> bool:
    """``range(1, coalesce(len(x), 0) + 1)``: the 1-based positions the compiler unnests."""
    return isinstance(node, exp.GenerateSeries) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in ("range", "generate_series"))


def rule_unnest_pair(node: exp.Expression) -> exp.Expression:
    """``SELECT *, unnest(x) AS it, unnest(range(1, len(x) + 1)) AS ix FROM src`` (an item and
    its 1-based position, zipped by DuckDB) -> one generator, as Spark allows one per SELECT:
    ``SELECT *, ix__0 + 1 AS ix FROM (SELECT *, posexplode(x) AS (ix__0, it) FROM src)``.
    NULL or empty ``x`` gives no rows, as unnest does. (``inline(arrays_zip(...))`` hit a
    Spark 4 column-pruning error when two such levels nest.)"""
    if not isinstance(node, exp.Select):
        return node
    gens = [(i, e) for i, e in enumerate(node.expressions)
            if isinstance(e, exp.Alias) and isinstance(e.this, exp.Explode | exp.Unnest)
            and not isinstance(e.this, exp.Posexplode)]
    if len(gens) < 2:
        return node
    if len(gens) != 2 or not _is_index_series(gens[1][1].this.this):
        raise DialectError(f"unnest at {_where(node)}: Spark allows one generator per SELECT; "
                           f"only an item with its position (unnest(x), unnest(range(...))) "
                           f"is translated")
    (i_item, item), (i_ix, ix) = gens
    zero = f"{ix.alias}__0"
    gen = exp.Aliases(this=exp.Posexplode(this=item.this.this.copy()),
                      expressions=[exp.to_identifier(zero), exp.to_identifier(item.alias)])
    projections = [e for k, e in enumerate(node.expressions) if k not in (i_item, i_ix)]
    projections.insert(i_item, gen)
    node.set("expressions", projections)
    shifted = exp.alias_(exp.Add(this=exp.column(zero), expression=exp.Literal.number(1)),
                         ix.alias)
    # sqlglot's transform does not descend into a node it replaced: a nested level (forEach
    # inside forEach) is translated here, or it would stay two generators, which Spark 4
    # runs as a cross product of the item and position lists.
    node.set("from_", node.args["from_"].transform(rule_unnest_pair, copy=False))
    return exp.select(exp.Star(), shifted).from_(node.subquery())


def rule_flatten(node: exp.Expression) -> exp.Expression:
    """``flatten(x)``: DuckDB skips NULL inner lists, Spark's flatten returns NULL.
    -> ``flatten(filter(x, _l -> _l IS NOT NULL))``."""
    if isinstance(node, exp.Flatten) and not node.args.get("_bmc_done"):
        keep = _lambda(exp.Not(this=exp.Is(this=_var("_l"), expression=exp.Null())), "_l")
        out = exp.Flatten(this=exp.ArrayFilter(this=node.this.copy(), expression=keep))
        out.set("_bmc_done", True)
        return out
    return node


def rule_list_concat(node: exp.Expression) -> exp.Expression:
    """``list_concat(a, b)``: DuckDB treats a NULL list as empty, Spark's concat returns NULL.
    -> ``concat(coalesce(a, array()), coalesce(b, array()))``."""
    if isinstance(node, exp.ArrayConcat) and not node.args.get("_bmc_done"):
        parts = [node.this, *node.expressions]
        out = exp.ArrayConcat(this=exp.Coalesce(this=parts[0].copy(),
                                                expressions=[exp.Array(expressions=[])]),
                              expressions=[exp.Coalesce(this=p.copy(),
                                                        expressions=[exp.Array(expressions=[])])
                                           for p in parts[1:]])
        out.set("_bmc_done", True)
        return out
    return node


def rule_regexp_full_match(node: exp.Expression) -> exp.Expression:
    """``regexp_full_match(s, 'p')`` -> ``s RLIKE '^(?:p)$'`` (RLIKE finds, not matches)."""
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise DialectError(f"regexp_full_match at {_where(node)}: the pattern must be a "
                               f"string literal")
        return exp.RegexpLike(this=node.this.copy(),
                              expression=exp.Literal.string(f"^(?:{pattern.this})$"))
    return node


def rule_json_lint(node: exp.Expression) -> exp.Expression:
    """``json_extract`` / ``->``, ``json_type`` and ``json_transform`` (the compiler's access to
    ``JSON``-typed parts) have no exact Spark translation here: sqlglot writes
    ``get_json_object``, which unquotes strings and returns no list for ``'$[*]'``. A lint,
    not a silent difference. (``->>`` / ``json_extract_string`` pass: both give the text.)"""
    if isinstance(node, exp.JSONExtract | exp.JSONType) or (
            isinstance(node, exp.Anonymous) and node.name.lower() == "json_transform"):
        name = node.name.lower() if isinstance(node, exp.Anonymous) else (
            "json_type" if isinstance(node, exp.JSONType) else "json_extract")
        raise DialectError(f"{name} at {_where(node)}: JSON-typed parts have no Spark "
                           f"translation yet (get_json_object unquotes strings and gives no "
                           f"list for '$[*]')")
    return node


_REFERENCE_KEY_SPARK = """
CASE
  WHEN __ref IS NULL OR __ref = '' THEN NULL
  WHEN __ref RLIKE __plain THEN
    CASE WHEN __typ IS NULL OR split_part(__ref, '/', 1) = __typ THEN __ref END
  WHEN startswith(__ref, '#') OR startswith(__ref, 'urn:') THEN __ref
  WHEN contains(__ref, '?') THEN
    CASE WHEN __typ IS NULL OR regexp_extract(__ref, __cond, 1) = __typ THEN __ref END
  WHEN regexp_extract(__ref, __literal, 1) = '' THEN __ref
  WHEN __typ IS NULL OR regexp_extract(__ref, __literal, 1) = __typ
    THEN regexp_extract(__ref, __literal, 1) || '/' || regexp_extract(__ref, __literal, 2)
END
"""


@cache
def _reference_key_template() -> exp.Expression:
    return sqlglot.parse_one(_REFERENCE_KEY_SPARK, read="spark")


def rule_reference_key(node: exp.Expression) -> exp.Expression:
    """The ``bmc_reference_key(ref, typ)`` macro (etl/viewdef/macros.py) inlined as the same
    CASE over Spark's regexp_extract / split_part / startswith (no UDF)."""
    if not (isinstance(node, exp.Anonymous) and node.name.lower() == "bmc_reference_key"
            and len(node.expressions) == 2):
        return node
    from etl.viewdef.macros import CONDITIONAL_TYPE, PLAIN_PATTERN, REFERENCE_PATTERN

    ref, typ = node.expressions
    values = {"__ref": ref, "__typ": typ,
              "__plain": exp.Literal.string(f"^(?:{PLAIN_PATTERN})$"),
              "__cond": exp.Literal.string(CONDITIONAL_TYPE),
              "__literal": exp.Literal.string(REFERENCE_PATTERN)}

    def fill(sub: exp.Expression) -> exp.Expression:
        if isinstance(sub, exp.Column) and not sub.table and sub.name in values:
            return exp.Paren(this=values[sub.name].copy())
        return sub

    return _reference_key_template().copy().transform(fill)


# --- rules the outcome queries need (queries/outcomes/) ---------------------------------------

#: A text Spark's date cast reads as DuckDB's does: a full year-month-day, then nothing (or
#: spaces) or a time. Spark alone also reads '2019', '2019-03', ' 2019 ', '+2019-03-05' and
#: '2019-03-05T' (DuckDB: NULL); DuckDB alone reads '2019/03/05' and '2019 03 05' (not ISO
#: 8601, so never a FHIR date) and rejects an impossible time ('2019-03-05T25:00', Spark reads
#: the day).
_DATE_TEXT = "^ *[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}( *$|[ T] *[0-9]{1,2}:[0-9]{2})"


def rule_try_cast_date(node: exp.Expression) -> exp.Expression:
    """``TRY_CAST(x AS DATE)``: Spark reads a year alone or a year-month as its first day,
    DuckDB gives NULL (a partial FHIR date must not become a precise one silently).
    -> ``CASE WHEN CAST(x AS STRING) RLIKE '<year-month-day>' THEN TRY_CAST(x AS DATE) END``
    (a DATE or TIMESTAMP ``x`` passes: its text is a full date)."""
    if not (isinstance(node, exp.TryCast) and node.to.is_type(exp.DataType.Type.DATE)
            and not node.args.get("_bmc_done")):
        return node
    cast = node.copy()
    cast.set("_bmc_done", True)
    text = exp.Cast(this=node.this.copy(), to=exp.DataType.build("STRING"))
    return exp.Case(ifs=[exp.If(this=exp.RegexpLike(this=text,
                                                    expression=exp.Literal.string(_DATE_TEXT)),
                                true=cast)])


@cache
def _date_macro_bodies() -> dict[str, exp.Expression]:
    """``fhir_date_lo`` / ``fhir_date_hi`` as etl/viewdef/macros.py defines them for DuckDB:
    the body of each ``CREATE ... MACRO name(t) AS (body)``, parsed as DuckDB SQL."""
    import re

    from etl.viewdef.macros import DATE_MACROS

    bodies = {}
    for statement in DATE_MACROS:
        m = re.search(r"MACRO\s+(\w+)\s*\(\s*t\s*\)\s+AS\s*\((.*)\)\s*$", statement,
                      re.S | re.I)
        if m is None:
            raise DialectError("etl/viewdef/macros.py: a date macro is not "
                               "'CREATE ... MACRO name(t) AS (...)'")
        bodies[m.group(1).lower()] = parse_duckdb(f"SELECT {m.group(2)}").expressions[0]
    return bodies


def rule_fhir_date(node: exp.Expression) -> exp.Expression:
    """The temporary macros ``fhir_date_lo(t)`` / ``fhir_date_hi(t)`` (first / last day a
    partial FHIR date denotes; etl/viewdef/macros.py) do not exist on Spark: their DuckDB body
    is inlined with ``t`` replaced by the argument, and the later rules translate it
    (``regexp_full_match`` -> ``RLIKE``, ``TRY_CAST(... AS DATE)``). Runs first, so every rule
    sees the inlined text."""
    if not (isinstance(node, exp.Anonymous) and node.name.lower() in ("fhir_date_lo",
                                                                      "fhir_date_hi")):
        return node
    if len(node.expressions) != 1:
        raise DialectError(f"{node.name} at {_where(node)}: takes one argument")
    arg = node.expressions[0]

    def fill(sub: exp.Expression) -> exp.Expression:
        if isinstance(sub, exp.Column) and not sub.table and sub.name == "t":
            return exp.Paren(this=arg.copy())
        return sub

    return _date_macro_bodies()[node.name.lower()].copy().transform(fill)


#: Applied in this order to every node, leaves first (sqlglot's transform order).
RULES: tuple[Callable[[exp.Expression], exp.Expression], ...] = (
    rule_fhir_date, rule_parameter, rule_array_index, rule_date_diff, rule_date_sub, rule_divide,
    rule_string_agg_distinct, rule_unnest_pair, rule_flatten, rule_list_concat,
    rule_regexp_full_match, rule_reference_key, rule_json_lint, rule_try_cast_date,
)


def parse_duckdb(sql: str) -> exp.Expression:
    """One statement of ``queries/`` as a sqlglot tree; DialectError with line/column."""
    try:
        trees = sqlglot.parse(sql, read=BmcDuckDB)
    except sqlglot.errors.ParseError as e:
        first = e.errors[0] if e.errors else {}
        raise DialectError(f"cannot parse the query (line {first.get('line')}, column "
                           f"{first.get('col')}): {first.get('description', e)}") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise DialectError(f"expected one statement, found {len(trees)}")
    return trees[0]


def apply_rules(tree: exp.Expression) -> exp.Expression:
    for rule in RULES:
        tree = tree.transform(rule, copy=False)
    _lint_generators(tree)
    return tree


def _lint_generators(tree: exp.Expression) -> None:
    """No SELECT may be left with two generators: Spark 4 runs them as a cross product where
    DuckDB zips them (a silent row multiplication, found in a nested forEach)."""
    for select in tree.find_all(exp.Select):
        gens = [e for e in select.expressions
                if isinstance(e, exp.Explode | exp.Unnest | exp.Posexplode)
                or (isinstance(e, exp.Alias | exp.Aliases)
                    and isinstance(e.this, exp.Explode | exp.Unnest | exp.Posexplode))]
        if len(gens) > 1:
            raise DialectError(f"unnest at {_where(select)}: {len(gens)} generators left in "
                               f"one SELECT after translation (Spark would cross them)")


@cache
def to_spark(sql: str) -> str:
    """The Spark SQL text of one DuckDB query of ``queries/`` (``$name`` -> ``:name``)."""
    return apply_rules(parse_duckdb(sql)).sql(dialect="spark", pretty=True)


__all__ = ["RULES", "DialectError", "apply_rules", "parse_duckdb", "to_spark"]
