"""Rendering: one document model, three outputs with the same content.

A :class:`Document` is a list of sections made of paragraphs, tables (DataFrames) and images
(PNG bytes). :func:`to_html` writes one self-contained page (inline CSS, images base64-embedded),
:func:`to_markdown` the same text and tables (images as files next to it), and every table with a
``csv`` name is also written as CSV by :func:`write_document`.
"""
from __future__ import annotations

import base64
import html
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1180px;
color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:2px solid #1f5fa8;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2.2rem;color:#1f5fa8}h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.86rem}
th,td{border:1px solid #d5dbe3;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef3f9;position:sticky;top:0}tr:nth-child(even) td{background:#fafbfd}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.v-reproduced{color:#1e7b34;font-weight:600}.v-differs{color:#b35c00;font-weight:600}
.v-paper-inconsistent{color:#b0182c;font-weight:600}.v-definition{color:#555}
.mismatch{background:#fde2e2 !important}.note{color:#555;font-size:.9rem}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}
details{margin:.6rem 0}summary{cursor:pointer;font-weight:600}
"""


@dataclass
class Table:
    title: str
    frame: pd.DataFrame
    csv: str | None = None
    note: str = ""
    highlight: pd.DataFrame | None = None  # same shape, True = mark the cell
    collapsed: bool = False


@dataclass
class Image:
    title: str
    png: bytes
    name: str
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Document:
    title: str
    intro: list[str]
    sections: list[Section]

    def tables(self) -> list[Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]

    def images(self) -> list[Image]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Image)]


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return "NA"
    if isinstance(v, float):
        return f"{v:.2f}" if not v.is_integer() else str(int(v))
    return str(v)


def _html_table(t: Table) -> str:
    cols = list(t.frame.columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    rows = []
    for i, (_, r) in enumerate(t.frame.iterrows()):
        cells = []
        for j, c in enumerate(cols):
            text = _cell(r[c])
            cls = []
            if isinstance(r[c], int | float) and not isinstance(r[c], bool):
                cls.append("num")
            if c.startswith("verdict"):
                cls.append("v-" + text.replace(" ", "-"))
            if t.highlight is not None and bool(t.highlight.iat[i, j]):
                cls.append("mismatch")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    if t.collapsed:
        return (f"<details><summary>{html.escape(t.title)} ({len(t.frame)} rows)</summary>"
                f"{note}{body}</details>")
    return f"<h3>{html.escape(t.title)}</h3>{note}{body}"


def to_html(doc: Document) -> str:
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(doc.title)}</h1>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in doc.intro]
    for s in doc.sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, str):
                parts.append(f"<p>{html.escape(b)}</p>")
            elif isinstance(b, Table):
                parts.append(_html_table(b))
            elif isinstance(b, Image):
                data = base64.b64encode(b.png).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(b.title)}" '
                             f'src="data:image/png;base64,{data}" style="max-width:100%">'
                             f"<figcaption>{html.escape(b.caption or b.title)}</figcaption>"
                             "</figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    cols = [str(c) for c in t.frame.columns]
    lines = [f"### {t.title}", ""]
    if t.note:
        lines += [f"*{t.note}*", ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for i, (_, r) in enumerate(t.frame.iterrows()):
        cells = []
        for j, c in enumerate(t.frame.columns):
            text = _md_escape(_cell(r[c]))
            if t.highlight is not None and bool(t.highlight.iat[i, j]):
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""] + [p + "\n" for p in doc.intro]
    for s in doc.sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, str):
                out += [b, ""]
            elif isinstance(b, Table):
                out.append(_md_table(b))
            elif isinstance(b, Image):
                out += [f"![{b.title}]({b.name})", "", f"*{b.caption or b.title}*", ""]
    return "\n".join(out)


def write_document(doc: Document, out_dir: Path) -> dict[str, Path]:
    """Write report.html, report.md, the PNGs the Markdown links and one CSV per table into
    ``out_dir``, and nothing else: the files go to a fresh folder beside it that then takes its
    place, so no file of an earlier run (another group's CSVs, an old figure) is left to be
    read as this run's, and a failed run leaves the earlier report whole."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    fresh.chmod(0o755)  # mkdtemp makes it private; a report folder is read by others
    try:
        written = _write_files(doc, fresh)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-old-", dir=out_dir.parent))
        out_dir.rename(old / out_dir.name)
        fresh.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        fresh.rename(out_dir)
    return {k: out_dir / v.relative_to(fresh) for k, v in written.items()}


def _write_files(doc: Document, out_dir: Path) -> dict[str, Path]:
    written = {"html": out_dir / "report.html", "markdown": out_dir / "report.md"}
    written["html"].write_text(to_html(doc), encoding="utf-8")
    written["markdown"].write_text(to_markdown(doc), encoding="utf-8")
    for img in doc.images():
        (out_dir / img.name).write_bytes(img.png)
        written[img.name] = out_dir / img.name
    for t in doc.tables():
        if t.csv:
            path = out_dir / f"{t.csv}.csv"
            t.frame.to_csv(path, index=False)
            written[path.name] = path
    return written
