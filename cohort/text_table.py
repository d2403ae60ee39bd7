"""Tables as plain text for a terminal or a pipe, at a given width.

What a reader copies must survive: an id (a column named ``patient_id``, ``*_id``, ``*_key``,
``code``, ``system``) is never folded or cut, whatever the width. Other text wraps inside its
column (on spaces; a long path after a ``/``); headers wrap at ``_``. When even the narrowest
layout is wider than the width, the last columns that are not ids are left out and a footer
names them (``--format csv|json`` has every column); :func:`records_text` shows such a table
as one block per row instead. No colour, no box-drawing characters,
control characters escaped: the text reads the same in a terminal, a pipe and a file.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from etl.errors import printable

GAP = 2          # spaces between columns
MIN_TEXT = 16    # a wrapped text column is never narrower than this (or its longest word)
_ID_NAMES = {"patient_id", "code", "system", "resource_key", "id"}


def is_id_column(name: str) -> bool:
    """True for columns whose values are identifiers a reader copies into another command."""
    return name in _ID_NAMES or name.endswith("_id") or name.endswith("_key")


def cell_width(text: str) -> int:
    """Terminal cells taken by ``text`` (East Asian wide and full-width characters take two,
    combining marks none)."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def cell_text(value: object) -> str:
    """How one value reads in a table: empty for missing, 4 significant digits for floats,
    true/false, and control characters escaped (nothing from the data acts on a terminal)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return printable(str(value))


def _hard_split(word: str, width: int) -> list[str]:
    """A word wider than ``width`` in pieces: after a ``/`` or ``:`` or before a ``#`` where
    one fits (``file:line``, ``file#entry[n]``), else wherever the width ends."""
    out, cur = [], ""
    for part in (p for p in re.split(r"(?<=[/:])|(?=#)", word) if p):
        if cur and cell_width(cur + part) > width:
            out.append(cur)
            cur = ""
        for ch in part:
            if cur and cell_width(cur + ch) > width:
                out.append(cur)
                cur = ""
            cur += ch
    return [*out, cur] if cur else out


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells: broken after spaces, a word longer than
    the width after a ``/`` or where it must. Empty text is one empty line."""
    if cell_width(text) <= width:
        return [text]
    lines: list[str] = []
    cur = ""
    for word in (w for w in re.split(r"(?<= )", text) if w):
        if cell_width((cur + word).rstrip()) <= width:
            cur += word
            continue
        if cur.strip():
            lines.append(cur.rstrip())
        cur = word
        bare = word.rstrip()
        if cell_width(bare) > width:
            *full, cur = _hard_split(bare, width)
            lines.extend(full)
            cur += word[len(bare):]
    if cur.strip() or not lines:
        lines.append(cur.rstrip())
    return lines


@dataclass
class TextTable:
    """A table laid out for ``width`` terminal cells.

    ``header`` names the columns, ``rows`` hold the cell texts (see :func:`cell_text`),
    ``right`` the columns aligned right (numbers); ``min_text``, when given, is the narrowest
    a text column gets even if a word is longer (it is cut: the layout must fit). :attr:`dropped` lists the columns left out
    because they could not fit."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    width: int
    right: frozenset[int] = frozenset()
    min_text: int | None = None
    widths: dict[int, int] = field(init=False)
    dropped: list[str] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.header)
        longest = [max([cell_width(r[i]) for r in self.rows] or [0]) for i in range(n)]
        head_part = [max(cell_width(p) for p in _header_parts(h)) for h in self.header]
        natural = [max(longest[i], cell_width(self.header[i])) for i in range(n)]
        ids = {i for i, h in enumerate(self.header) if is_id_column(h)}
        minimum = [max(longest[i], head_part[i]) if i in ids or longest[i] <= MIN_TEXT
                   else max(head_part[i], self.min_text) if self.min_text
                   else max(head_part[i], MIN_TEXT, _longest_word(self.rows, i))
                   for i in range(n)]
        minimum = [min(m, natural[i]) if i not in ids else m for i, m in enumerate(minimum)]
        kept = list(range(n))

        def total(widths: list[int]) -> int:
            return sum(widths[i] for i in kept) + GAP * (len(kept) - 1)

        droppable = [i for i in kept if i not in ids]
        while total(minimum) > self.width and droppable:
            kept.remove(droppable.pop())
        self.dropped = [self.header[i] for i in range(n) if i not in kept]
        widths = {i: minimum[i] for i in kept}
        spare = self.width - (sum(widths.values()) + GAP * (len(kept) - 1))
        # whole columns first (the smallest needs: a header that need not wrap), then the
        # rest to the texts that still wrap
        for i in sorted(kept, key=lambda j: (natural[j] - widths[j], j)):
            gain = natural[i] - widths[i]
            if 0 < gain <= spare:
                widths[i] += gain
                spare -= gain
        need = {i: natural[i] - widths[i] for i in kept if widths[i] < natural[i]}
        if need and spare > 0:  # shared in proportion to what each still lacks
            total_need = sum(need.values())
            for i, n_i in need.items():
                widths[i] += spare * n_i // total_need
            spare -= sum(spare * n_i // total_need for n_i in need.values())
            for i in sorted(need, key=lambda j: (-need[j], j))[:spare]:
                widths[i] += 1
        self.widths = widths

    def _lines(self, cells: Sequence[str], header: bool = False) -> list[str]:
        cols = []
        for i, w in self.widths.items():
            text = cells[i]
            if header:
                parts = [text] if cell_width(text) <= w else _pack(_header_parts(text), w)
            elif is_id_column(self.header[i]):
                parts = [text]
            else:
                parts = wrap(text, w)
            cols.append((i, w, parts))
        height = max(len(p) for _, _, p in cols)
        out = []
        for k in range(height):
            line = []
            for i, w, parts in cols:
                text = parts[k] if k < len(parts) else ""
                pad = " " * max(w - cell_width(text), 0)
                line.append(pad + text if i in self.right and not header else text + pad)
            out.append((" " * GAP).join(line).rstrip())
        return out

    def header_lines(self) -> list[str]:
        """The column names (wrapped at ``_`` when narrower than the name) and a rule."""
        return [*self._lines(self.header, header=True),
                (" " * GAP).join("-" * w for w in self.widths.values())]

    def row_lines(self, k: int) -> list[str]:
        """The lines of row ``k``: one, or more when a text wraps inside its column."""
        return self._lines(self.rows[k])

    def footer(self) -> str | None:
        """The sentence naming the columns left out, if any."""
        if not self.dropped:
            return None
        return (f"({len(self.dropped)} more column{'s' if len(self.dropped) > 1 else ''} at "
                f"{self.width} columns: {', '.join(self.dropped)}; wider terminal, or "
                f"--format csv|json for every column)")

    def render(self, title: str | None = None) -> str:
        """The whole table as text: title, header, rows (a blank line between rows when any
        row takes more than one line), footer."""
        bodies = [self.row_lines(k) for k in range(len(self.rows))]
        spaced = any(len(b) > 1 for b in bodies)
        lines = [title] if title else []
        lines += self.header_lines()
        for k, body in enumerate(bodies):
            if spaced and k:
                lines.append("")
            lines += body
        footer = self.footer()
        if footer:
            lines += wrap(footer, self.width)
        return "\n".join(lines) + "\n"


def records_text(header: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                 title: str | None = None) -> str:
    """One block per row, one ``column  value`` line per column (the value wrapped in the
    space left, an id whole): for tables with more columns than the width holds, so no
    column is hidden and nothing is folded."""
    name_w = max(cell_width(h) for h in header)
    value_w = max(width - name_w - GAP, MIN_TEXT)
    lines = [title] if title else []
    for k, row in enumerate(rows):
        if k or title:
            lines.append("")
        for name, value in zip(header, row, strict=True):
            if is_id_column(name) and cell_width(value) > width - name_w - GAP:
                lines += [name, " " * GAP + value]  # whole, on a line of its own
                continue
            parts = [value] if is_id_column(name) else wrap(value, value_w)
            lines.append((name.ljust(name_w) + " " * GAP + parts[0]).rstrip())
            lines += [" " * (name_w + GAP) + p for p in parts[1:]]
    return "\n".join(lines) + "\n"


def _header_parts(name: str) -> list[str]:
    return [p for p in re.split(r"(?<=_)", name) if p] or [""]


def _pack(parts: list[str], width: int) -> list[str]:
    lines, cur = [], ""
    for p in parts:
        if cur and cell_width(cur + p) > width:
            lines.append(cur)
            cur = ""
        cur += p
    return [*lines, cur]


def _longest_word(rows: Sequence[Sequence[str]], i: int) -> int:
    """The longest word of column ``i`` up to :data:`MIN_TEXT` * 2 (a longer one is cut)."""
    words = (w for r in rows for w in r[i].split(" "))
    return min(max((cell_width(w.strip()) for w in words), default=0), MIN_TEXT * 2)
