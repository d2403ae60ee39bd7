"""Tokenizer and parser for the FHIRPath subset that ViewDefinitions use.

The compiler needs an AST, not an evaluator: every expression is translated to DuckDB SQL
once per view, so the parser only has to be exact about syntax and precedence (FHIRPath
N1 grammar, section "Operator precedence"). Errors carry the 0-based character offset so a
message can say ``select[1].column[0].path: unexpected '@' at offset 0``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal


class FhirPathSyntaxError(ValueError):
    """A FHIRPath expression that does not parse; ``offset`` is 0-based."""

    def __init__(self, message: str, offset: int):
        self.message = message
        self.offset = offset
        super().__init__(f"{message} at offset {offset}")


# --- AST ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    """Base of every AST node; ``offset`` is where the node starts in the source."""

    offset: int


@dataclass(frozen=True)
class Literal(Node):
    """A literal; ``kind`` is one of string, integer, decimal, boolean, date, dateTime, time,
    or empty (for ``{}``)."""

    value: object
    kind: str


@dataclass(frozen=True)
class Identifier(Node):
    """A bare name at the start of a path: an element of the focus, or a type name."""

    name: str


@dataclass(frozen=True)
class This(Node):
    """``$this`` (``$index`` and ``$total`` are rejected by the parser)."""


@dataclass(frozen=True)
class Variable(Node):
    """``%name`` -- a ViewDefinition constant or ``%rowIndex``."""

    name: str


@dataclass(frozen=True)
class Member(Node):
    """``target.name`` -- navigation to a child element."""

    target: Node
    name: str


@dataclass(frozen=True)
class Call(Node):
    """``target.name(args)``; ``target`` is None for a call at the start of a path."""

    target: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index(Node):
    """``target[index]``."""

    target: Node
    index: Node


@dataclass(frozen=True)
class Binary(Node):
    """A binary operator (``and``, ``=``, ``+``, ``|``, ...)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary(Node):
    """Unary ``+`` or ``-``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class TypeOp(Node):
    """``expr is Type`` / ``expr as Type``."""

    op: str
    operand: Node
    type_name: str


# --- tokenizer ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, date, time, var, this, op, eof
    text: str
    offset: int
    value: object = None


_DATETIME = re.compile(
    r"@(\d{4}(?:-\d{2}(?:-\d{2})?)?)(T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?"
    r"(?:Z|[+-]\d{2}:\d{2})?)?")
_TIME = re.compile(r"@T(\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("<=", ">=", "!=", "!~", "{}", "=", "~", "<", ">", "+", "-", "*", "/", "&",
              "|", "(", ")", "[", "]", ",", ".")
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}


def _read_quoted(src: str, start: int, quote: str) -> tuple[str, int]:
    """Read a quoted string/identifier starting at ``start`` (the quote); return (text, end)."""
    out: list[str] = []
    i = start + 1
    while i < len(src):
        ch = src[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(src):
                break
            nxt = src[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", src[i + 2:i + 6] or ""):
                out.append(chr(int(src[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise FhirPathSyntaxError(f"invalid escape '\\{nxt}'", i)
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise FhirPathSyntaxError(f"unterminated {quote}-quoted text", start)


def tokenize(src: str) -> list[Token]:
    """Split a FHIRPath expression into tokens (comments and whitespace dropped)."""
    tokens: list[Token] = []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch.isspace():
            i += 1
            continue
        if src.startswith("//", i):
            end = src.find("\n", i)
            i = len(src) if end < 0 else end
            continue
        if src.startswith("/*", i):
            end = src.find("*/", i + 2)
            if end < 0:
                raise FhirPathSyntaxError("unterminated comment", i)
            i = end + 2
            continue
        if ch == "'":
            text, end = _read_quoted(src, i, "'")
            tokens.append(Token("string", src[i:end], i, text))
            i = end
        elif ch == "`":
            text, end = _read_quoted(src, i, "`")
            tokens.append(Token("ident", text, i, "delimited"))
            i = end
        elif ch == "@":
            m = _TIME.match(src, i)
            if m:
                tokens.append(Token("time", m.group(0), i, m.group(1)))
                i = m.end()
                continue
            m = _DATETIME.match(src, i)
            if not m:
                raise FhirPathSyntaxError("unexpected '@'", i)
            kind = "dateTime" if m.group(2) else "date"
            value = m.group(1) + (m.group(2) or "")
            tokens.append(Token(kind, m.group(0), i, value))
            i = m.end()
        elif ch == "%":
            if i + 1 < len(src) and src[i + 1] in "'`":
                name, end = _read_quoted(src, i + 1, src[i + 1])
            else:
                m = _IDENT.match(src, i + 1)
                if not m:
                    raise FhirPathSyntaxError("expected a name after '%'", i)
                name, end = m.group(0), m.end()
            tokens.append(Token("var", src[i:end], i, name))
            i = end
        elif ch == "$":
            m = _IDENT.match(src, i + 1)
            if not m or m.group(0) != "this":
                raise FhirPathSyntaxError(
                    f"unsupported '${m.group(0) if m else ''}' (only $this is supported)", i)
            tokens.append(Token("this", "$this", i))
            i = m.end()
        elif ch.isdigit():
            m = _NUMBER.match(src, i)
            assert m is not None
            text = m.group(0)
            tokens.append(Token("number", text, i, Decimal(text) if "." in text else int(text)))
            i = m.end()
        elif ch.isalpha() or ch == "_":
            m = _IDENT.match(src, i)
            assert m is not None
            tokens.append(Token("ident", m.group(0), i))
            i = m.end()
        else:
            for op in _OPERATORS:
                if src.startswith(op, i):
                    tokens.append(Token("op", op, i))
                    i += len(op)
                    break
            else:
                raise FhirPathSyntaxError(f"unexpected {ch!r}", i)
    tokens.append(Token("eof", "", len(src)))
    return tokens


# --- parser (precedence climbing) --------------------------------------------------------

# Binary operators from loosest to tightest binding (FHIRPath N1 "Operator precedence").
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("implies",),
    ("or", "xor"),
    ("and",),
    ("in", "contains"),
    ("=", "~", "!=", "!~"),
    ("<=", "<", ">", ">="),
    ("|",),
    ("is", "as"),
    ("+", "-", "&"),
    ("*", "/", "div", "mod"),
)
_WORD_OPS = {"implies", "or", "xor", "and", "in", "contains", "is", "as", "div", "mod"}


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.tokens = tokenize(src)
        self.pos = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def fail(self, tok: Token) -> FhirPathSyntaxError:
        if tok.kind == "eof":
            return FhirPathSyntaxError("unexpected end of expression", tok.offset)
        return FhirPathSyntaxError(f"unexpected {tok.text!r}", tok.offset)

    def expect(self, text: str) -> Token:
        if self.tok.kind == "op" and self.tok.text == text:
            return self.advance()
        raise self.fail(self.tok)

    def is_binop(self, ops: tuple[str, ...]) -> bool:
        tok = self.tok
        if tok.kind == "op" and tok.text in ops:
            return True
        return tok.kind == "ident" and tok.value is None and tok.text in ops \
            and tok.text in _WORD_OPS

    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise FhirPathSyntaxError("empty expression", 0)
        node = self.expression(0)
        if self.tok.kind != "eof":
            raise self.fail(self.tok)
        return node

    def expression(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.expression(level + 1)
        while self.is_binop(_LEVELS[level]):
            op_tok = self.advance()
            if op_tok.text in ("is", "as"):
                left = TypeOp(left.offset, op_tok.text, left, self.type_specifier())
                continue
            right = self.expression(level + 1)
            left = Binary(left.offset, op_tok.text, left, right)
        return left

    def type_specifier(self) -> str:
        parts = [self.identifier()]
        while self.tok.kind == "op" and self.tok.text == "." and \
                self.tokens[self.pos + 1].kind == "ident":
            self.advance()
            parts.append(self.identifier())
        return ".".join(parts)

    def identifier(self) -> str:
        if self.tok.kind != "ident":
            raise self.fail(self.tok)
        return self.advance().text

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in ("+", "-"):
            tok = self.advance()
            return Unary(tok.offset, tok.text, self.unary())
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.tok.kind == "op" and self.tok.text == ".":
                self.advance()
                name_tok = self.tok
                name = self.identifier()
                if self.tok.kind == "op" and self.tok.text == "(":
                    node = Call(name_tok.offset, node, name, self.arguments())
                else:
                    node = Member(name_tok.offset, node, name)
            elif self.tok.kind == "op" and self.tok.text == "[":
                self.advance()
                index = self.expression(0)
                self.expect("]")
                node = Index(node.offset, node, index)
            else:
                return node

    def arguments(self) -> tuple[Node, ...]:
        self.expect("(")
        args: list[Node] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            args.append(self.expression(0))
            while self.tok.kind == "op" and self.tok.text == ",":
                self.advance()
                args.append(self.expression(0))
        self.expect(")")
        return tuple(args)

    def term(self) -> Node:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            node = self.expression(0)
            self.expect(")")
            return node
        if tok.kind == "op" and tok.text == "{}":
            self.advance()
            return Literal(tok.offset, None, "empty")
        if tok.kind == "string":
            self.advance()
            return Literal(tok.offset, tok.value, "string")
        if tok.kind == "number":
            self.advance()
            if self.tok.kind == "string" or (self.tok.kind == "ident" and self.tok.value is None
                                              and self.tok.text in _CALENDAR_UNITS):
                raise FhirPathSyntaxError("quantity literals are not supported", tok.offset)
            kind = "decimal" if isinstance(tok.value, Decimal) else "integer"
            return Literal(tok.offset, tok.value, kind)
        if tok.kind in ("date", "dateTime", "time"):
            self.advance()
            return Literal(tok.offset, tok.value, tok.kind)
        if tok.kind == "var":
            self.advance()
            return Variable(tok.offset, str(tok.value))
        if tok.kind == "this":
            self.advance()
            return This(tok.offset)
        if tok.kind == "ident":
            self.advance()
            if tok.value is None and tok.text in ("true", "false"):
                return Literal(tok.offset, tok.text == "true", "boolean")
            if self.tok.kind == "op" and self.tok.text == "(":
                return Call(tok.offset, None, tok.text, self.arguments())
            return Identifier(tok.offset, tok.text)
        raise self.fail(tok)


_CALENDAR_UNITS = {"year", "years", "month", "months", "week", "weeks", "day", "days", "hour",
                   "hours", "minute", "minutes", "second", "seconds", "millisecond",
                   "milliseconds"}


def parse(src: str) -> Node:
    """Parse a FHIRPath expression; raise FhirPathSyntaxError with the offset on failure."""
    if not isinstance(src, str):
        raise FhirPathSyntaxError(f"expected a string, got {type(src).__name__}", 0)
    return _Parser(src).parse()
