"""Render a :class:`Document` as Markdown (figures linked) or self-contained HTML (figures embedded)."""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from shallowcert.report.document import Code, Document, Figure, Heading, Paragraph, Table, cell


def to_markdown(doc: Document, *, relative_to: Path) -> str:
    lines = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Code):
            lines += ["```", block.text.rstrip(), "```", ""]
        elif isinstance(block, Table):
            lines += [f"**{block.label}.** {block.caption}", "",
                      "| " + " | ".join(block.headers) + " |", "|" + "---|" * len(block.headers)]
            lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Figure):
            rel = os.path.relpath(block.path, relative_to)
            lines += [f"![{block.label}]({rel})", "", f"*{block.label}.* {block.caption}", ""]
    return "\n".join(lines)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1b1b1b;line-height:1.45}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1em 0} figcaption{font-size:.9em;color:#444}
img{max-width:100%} pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em}
.holds{color:#0a6b2a;font-weight:600} .fails{color:#a3121d;font-weight:600} .open{color:#8a6d00;font-weight:600}
"""


def to_html(doc: Document) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(doc.title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{esc(doc.title)}</h1>"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            text = esc(block.text)
            for word, css in (("does not hold", "fails"), ("holds", "holds"), ("undecided", "open")):
                text = re.sub(rf"\*\*({word}[^*]*)\*\*", rf"<span class='{css}'>\1</span>", text)
            parts.append(f"<p>{text}</p>")
        elif isinstance(block, Code):
            parts.append(f"<pre>{esc(block.text)}</pre>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
            body = "".join("<tr>" + "".join(f"<td>{esc(cell(v))}</td>" for v in row) + "</tr>" for row in block.rows)
            parts.append(f"<table><caption>{esc(block.label)}. {esc(block.caption)}</caption>"
                         f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(Path(block.path).read_bytes()).decode()
            parts.append(f"<figure><img alt='{esc(block.label)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption><b>{esc(block.label)}.</b> {esc(block.caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
