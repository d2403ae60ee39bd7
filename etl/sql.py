"""Quoting for the few places SQL text must hold a name or a constant: one home for both.

Values read from input files are always bound parameters; these helpers are for identifiers
(which cannot be bound) and for constants DuckDB needs in the text itself (``json_transform``
structures, ``COPY ... TO 'file'``, ``ATTACH 'file'``, ``SET x = '...'``).
"""
from __future__ import annotations


def quote_ident(name: str) -> str:
    """An SQL identifier, always double-quoted (``"`` doubled inside)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """An SQL string literal (``'`` doubled inside): valid wherever the grammar wants a
    literal, including ``COPY ... TO``, ``ATTACH`` and ``SET``."""
    return "'" + text.replace("'", "''") + "'"


def template_string(text: str) -> str:
    """The same string value as :func:`sql_string`, written without braces, for SQL that is
    later filled in with ``str.format`` or ``{source}`` replacement (the ViewDefinition
    compiler's templates): a brace is spelled ``chr(123)``/``chr(125)``, which DuckDB folds
    to a constant, so the only braces in compiled SQL are the placeholders. An expression
    rather than a literal when the text holds a brace, so not for ``COPY``/``ATTACH``/``SET``.
    """
    quoted = sql_string(text)
    if "{" not in text and "}" not in text:
        return quoted
    quoted = quoted.replace("{", "' || chr(123) || '").replace("}", "' || chr(125) || '")
    return f"({quoted})"
