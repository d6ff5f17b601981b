"""A small document model rendered both as Markdown and as one self-contained HTML file.

The report is built once as sections of paragraphs, bullet lists, tables and figures, then
written twice: Markdown that links ``figures/*.png``, and HTML with inline CSS and the same
PNGs embedded as base64 data URIs (no external link of any kind, so the file can be mailed or
archived alone). Inline markup is limited to ``**bold**``, ``*italic*`` and ```code```.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*([^*\s](?:[^*]*[^*\s])?)\*(?![*\w])")
_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG figure; ``name`` is its file name under ``figures/``."""

    name: str
    png: bytes
    caption: str


Block = Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def to_markdown(doc: Document, figure_dir: str = "figures") -> str:
    lines = [f"# {doc.title}", ""]
    for section in doc.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [block.text, ""]
            elif isinstance(block, Bullets):
                lines += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                if block.caption:
                    lines += [f"*{block.caption}*", ""]
                lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                lines.append("|" + "|".join("---" for _ in block.headers) + "|")
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                lines.append("")
            elif isinstance(block, Figure):
                lines += [
                    f"![{block.caption}]({figure_dir}/{block.name})",
                    "",
                    f"*{block.caption}*",
                    "",
                ]
    return "\n".join(lines).rstrip() + "\n"


def to_html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{html.escape(doc.title)}</h1>",
        "<nav><ol>"
        + "".join(
            f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in doc.sections
        )
        + "</ol></nav>",
    ]
    for section in doc.sections:
        parts.append(f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Paragraph):
                parts.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Bullets):
                parts.append(
                    "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
                )
            elif isinstance(block, Table):
                caption = f"<caption>{_inline(block.caption)}</caption>" if block.caption else ""
                head = "".join(f"<th>{_inline(h)}</th>" for h in block.headers)
                body = "".join(
                    "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                    for row in block.rows
                )
                parts.append(
                    f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr>'
                    f"</thead><tbody>{body}</tbody></table></div>"
                )
            elif isinstance(block, Figure):
                data = base64.b64encode(block.png).decode("ascii")
                alt = html.escape(block.caption, quote=True)
                parts.append(
                    f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
                )
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _ITALIC.sub(r"<em>\1</em>", escaped)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_CSS = """
body{font:15px/1.5 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1d1d1f;
background:#fafafa;margin:0}
main{max-width:1100px;margin:0 auto;padding:1.5em 2em;background:#fff}
h1{font-size:1.7em;margin-bottom:.3em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}
nav ol{columns:2;font-size:.92em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.88em}
caption{text-align:left;font-style:italic;padding-bottom:.3em}
th,td{border:1px solid #d0d0d0;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f2f5}tbody tr:nth-child(even){background:#f8f9fb}
.scroll{overflow-x:auto}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.88em;color:#555}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
"""
