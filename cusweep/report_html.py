"""The self-contained ``index.html`` of ``cusweep report``: every map (PNG inlined as base64) and the summary
table in one page that needs no other file and no network."""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["report_index"]

#: image types a browser shows inline, by file extension
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}

_STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:90%}th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:0 1em 1.5em 0;vertical-align:top}figcaption{font-size:90%}
img{max-width:720px;border:1px solid #ddd}"""


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def report_index(outdir: str, maps: Sequence[tuple[str, str]], table_rows: Sequence[Mapping[str, Any]],
                 title: str = "cusweep report") -> str:
    """Write ``outdir/index.html``: the summary table (columns: the keys of the rows, in first-seen order)
    then every map of ``maps`` (caption, PNG path; relative paths are relative to ``outdir``) inlined as a
    base64 data URI. Returns the path written."""
    columns: list[str] = []
    for row in table_rows:
        columns += [str(k) for k in row if str(k) not in columns]
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if table_rows:
        parts.append("<h2>Summary</h2><table>")
        parts.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>")
        for row in table_rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns)
                         + "</tr>")
        parts.append("</table>")
    if maps:
        parts.append("<h2>Maps</h2>")
    for caption, path in maps:
        full = path if os.path.isabs(path) else os.path.join(outdir, path)
        cap = html.escape(caption)
        mime = _MIME.get(os.path.splitext(full)[1].lower())
        if mime is None:  # e.g. PDF: a browser cannot inline it as an image; link it (relative to the page)
            rel = html.escape(os.path.relpath(full, outdir))
            parts.append(f"<figure><a href=\"{rel}\">{cap}</a><figcaption>{cap}</figcaption></figure>")
            continue
        with open(full, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        parts.append(f"<figure><img alt=\"{cap}\" src=\"data:{mime};base64,{data}\">"
                     f"<figcaption>{cap}</figcaption></figure>")
    parts.append("</body></html>\n")
    out = os.path.join(outdir, "index.html")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return out
