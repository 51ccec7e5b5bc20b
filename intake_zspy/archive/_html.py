"""The browse page: one self-contained ``index.html`` with inline CSS and a few lines of JS.

Safe by construction: every string that comes from a store (names, titles, metadata,
errors) goes through :func:`esc` (``html.escape`` with quotes) before it reaches the
page, in text and in quoted attributes alike. The page's only script is the constant
:data:`SCRIPT`; a Content-Security-Policy allows that script (by its hash) and no other,
so even markup that slipped through could not run code.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from intake_zspy import _units as units

__all__ = ["Row", "esc", "format_bytes", "raw_bytes", "render_page", "shape_text"]


def esc(value: Any) -> str:
    """``value`` as text safe in HTML content and in quoted attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def format_bytes(n: int | None) -> str:
    """``"1.2 MB"``; empty for unknown."""
    return units.format_bytes(n, unknown="")


_ITEMSIZE = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2}


def raw_bytes(summary: Mapping[str, Any]) -> int | None:
    """Uncompressed bytes of a summarised signal, from its dtype and shape (``None``: unknown)."""
    dtype = str(summary.get("dtype", ""))
    digits = "".join(ch for ch in dtype if ch.isdigit())
    if dtype in _ITEMSIZE:
        itemsize = _ITEMSIZE[dtype]
    elif dtype.startswith(("int", "uint", "float", "complex")) and digits:
        itemsize = int(digits) // 8
    else:
        return None
    return math.prod(int(n) for n in summary.get("shape", [])) * itemsize


def shape_text(summary: Mapping[str, Any]) -> str:
    """HyperSpy's ``(navigation|signal)`` notation, e.g. ``(64, 64|2048)``."""
    axes = summary.get("axes") or []
    if not axes:
        return "x".join(str(n) for n in summary.get("shape", [])) or "scalar"
    nav = [str(a["size"]) for a in reversed(axes) if a.get("navigate") is not False]
    sig = [str(a["size"]) for a in reversed(axes) if a.get("navigate") is False]
    return f"({', '.join(nav)}|{', '.join(sig)})"


@dataclass
class Row:
    """One store on the page: what the listing said, and its thumbnail (or why none)."""

    name: str
    url: str
    size: int
    signals: list[dict[str, Any]]
    snippet: str
    error: str | None = None
    thumbnail: str | None = None
    no_thumbnail: str = ""


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}.sub{color:#666;margin:0 0 1em}
.bar{display:flex;gap:.6em;align-items:center;margin-bottom:.8em}
.bar input{flex:1;max-width:28em;padding:.35em .5em;font:inherit}
.bar select{padding:.3em;font:inherit}#count{color:#666}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;white-space:nowrap}td.thumb{width:244px}
td.thumb img{width:240px;height:auto;border:1px solid #ccc;background:#fafafa;display:block}
.none{color:#888;font-style:italic;font-size:.9em}
tr.damaged td{background:#fff1f0}.err{color:#a8071a;white-space:pre-wrap;word-break:break-word}
code{font:12px/1.3 ui-monospace,monospace;background:#f6f6f6;padding:.15em .3em;
display:block;white-space:pre-wrap;word-break:break-all}td.open{min-width:26em}
.wrap{overflow-x:auto}.sig:empty{display:none}
button.copy{font-size:.8em;margin-top:.3em}.sig+.sig{margin-top:.4em;padding-top:.4em;
border-top:1px dashed #ddd}.muted{color:#666}
"""

#: The page's only script: filter (text and signal type, also from ``#q=...&type=...``),
#: sortable columns, copy buttons and a note on thumbnails that fail to load.
SCRIPT = """
(function(){
var q=document.getElementById('q'),t=document.getElementById('type'),
rows=Array.prototype.slice.call(document.querySelectorAll('tbody tr')),
count=document.getElementById('count');
function apply(){var s=q.value.toLowerCase().trim(),k=t.value,n=0;
rows.forEach(function(r){var ok=(!s||r.dataset.search.indexOf(s)>=0)&&
(!k||(' '+r.dataset.types+' ').indexOf(' '+k+' ')>=0);r.hidden=!ok;if(ok)n++;});
count.textContent=n+' of '+rows.length+' stores';}
var h=new URLSearchParams(location.hash.slice(1));
if(h.get('q'))q.value=h.get('q');if(h.get('type'))t.value=h.get('type');
q.addEventListener('input',apply);t.addEventListener('change',apply);apply();
document.querySelectorAll('th[data-col]').forEach(function(th){
th.addEventListener('click',function(){var c=+th.dataset.col,
d=th.getAttribute('aria-sort')==='ascending'?-1:1,tb=document.querySelector('tbody');
document.querySelectorAll('th').forEach(function(o){o.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',d>0?'ascending':'descending');
rows.sort(function(a,b){var x=a.cells[c].dataset.v,y=b.cells[c].dataset.v,
nx=parseFloat(x),ny=parseFloat(y);if(!isNaN(nx)&&!isNaN(ny))return d*(nx-ny);
return d*x.localeCompare(y);});rows.forEach(function(r){tb.appendChild(r);});});});
document.querySelectorAll('button.copy').forEach(function(b){
b.addEventListener('click',function(){var c=b.previousElementSibling.textContent;
if(navigator.clipboard)navigator.clipboard.writeText(c);b.textContent='copied';});});
document.querySelectorAll('td.thumb img').forEach(function(img){
function broken(){var s=document.createElement('span');s.className='none';
s.textContent='preview did not load';img.replaceWith(s);}
if(img.complete&&img.naturalWidth===0)broken();else img.addEventListener('error',broken);});
})();
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (
        "default-src 'none'; img-src * data: file:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'"
    )


def _signal_cell(s: Mapping[str, Any]) -> str:
    title = s.get("title") or s.get("signal", "")
    extra = (
        "" if title == s.get("signal") else f' <span class="muted">[{esc(s.get("signal"))}]</span>'
    )
    return f'<div class="sig"><b>{esc(title)}</b>{extra}</div>'


def _acquisition(s: Mapping[str, Any]) -> str:
    parts = [
        " ".join(str(s[k]) for k in ("date", "time") if s.get(k)),
        str(s.get("instrument") or ""),
        f"{s['beam_energy']:g} kV" if isinstance(s.get("beam_energy"), int | float) else "",
    ]
    return esc(" · ".join(p for p in parts if p))


def _shape(s: Mapping[str, Any]) -> str:
    return f"{esc(shape_text(s))} {esc(s.get('dtype', ''))}"


def _chunks(s: Mapping[str, Any]) -> str:
    return esc("x".join(str(c) for c in s.get("chunks", [])))


def _signal_type(s: Mapping[str, Any]) -> str:
    return esc(s.get("signal_type") or "")


def _lines(signals: Sequence[Mapping[str, Any]], fn: Any) -> str:
    return "".join(f'<div class="sig">{fn(s)}</div>' for s in signals)


_COPY = '<button class="copy" type="button">copy</button>'


def _row(row: Row) -> str:
    sigs = row.signals
    types = sorted({str(s.get("signal_type") or "") for s in sigs} - {""})
    words = [row.name, row.url, *types]
    for s in sigs:
        words += [str(s.get("title", "")), str(s.get("signal", "")), str(s.get("instrument", ""))]
    if row.error:
        words += ["unreadable", row.error]
    search = " ".join(words).lower()
    raw = sum(raw_bytes(s) or 0 for s in sigs)
    if row.thumbnail:
        thumb = f'<img src="{esc(row.thumbnail)}" alt="preview of {esc(row.name)}" loading="lazy">'
    else:
        thumb = f'<span class="none">{esc(row.no_thumbnail or "no preview")}</span>'
    cls = ' class="damaged"' if row.error else ""
    if row.error:
        what = f'<div class="err">unreadable: {esc(row.error)}</div>'
    else:
        what = "".join(_signal_cell(s) for s in sigs)
    first = sigs[0] if sigs else {}
    cells = [
        f'<td class="thumb" data-v="{esc(row.name)}">{thumb}</td>',
        f'<td data-v="{esc(row.name)}"><b>{esc(row.name)}</b></td>',
        f'<td data-v="{esc(first.get("title", row.error or ""))}">{what}</td>',
        f'<td data-v="{esc(" ".join(types))}">{_lines(sigs, _signal_type)}</td>',
        f'<td data-v="{esc(shape_text(first) if first else "")}">{_lines(sigs, _shape)}</td>',
        f'<td data-v="{esc(_chunks(first))}">{_lines(sigs, _chunks)}</td>',
        f'<td class="num" data-v="{row.size}">{esc(format_bytes(row.size))}</td>',
        f'<td class="num" data-v="{raw}">{esc(format_bytes(raw) if sigs else "")}</td>',
        f'<td data-v="{_acquisition(first) if first else ""}">{_lines(sigs, _acquisition)}</td>',
        f'<td class="open" data-v="{esc(row.url)}"><code>{esc(row.snippet)}</code>{_COPY}</td>',
    ]
    return (
        f'<tr{cls} data-name="{esc(row.name)}" data-types="{esc(" ".join(types))}" '
        f'data-search="{esc(search)}">' + "".join(cells) + "</tr>"
    )


_COLUMNS = (
    "preview",
    "entry",
    "title",
    "signal type",
    "shape (nav|sig) and dtype",
    "chunks",
    "stored",
    "raw",
    "acquired",
    "open it",
)


def render_page(
    title: str, source: str, rows: Sequence[Row], generated: str, note: str = ""
) -> str:
    """The whole ``index.html``.

    Parameters
    ----------
    title
        The page's heading (escaped here).
    source
        The URL that was browsed, credentials already left out (escaped here).
    rows
        One per store, sorted as they should first appear.
    generated
        When the page was made (UTC text).
    note
        An extra line under the heading (escaped here).
    """
    types = sorted({str(s.get("signal_type")) for r in rows for s in r.signals} - {"", "None"})
    options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in types)
    damaged = sum(1 for r in rows if r.error)
    head = "".join(f'<th data-col="{i}" scope="col">{esc(c)}</th>' for i, c in enumerate(_COLUMNS))
    body = "\n".join(_row(r) for r in rows)
    summary = f"{len(rows)} stores" + (f", {damaged} unreadable" if damaged else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(_csp())}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="generator" content="intake-zspy browse">
<title>{esc(title)}</title><style>{STYLE}</style></head>
<body><h1>{esc(title)}</h1>
<p class="sub">{esc(summary)} under <code style="display:inline">{esc(source)}</code>,
made {esc(generated)}{esc(note)}</p>
<div class="bar"><input id="q" type="search" placeholder="filter: title, name, type, error..."
aria-label="filter"><select id="type" aria-label="signal type"><option value="">all signal
types</option>{options}</select><span id="count">{esc(summary)}</span></div>
<div class="wrap"><table id="stores"><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table></div>
<script>{SCRIPT}</script>
</body></html>
"""
