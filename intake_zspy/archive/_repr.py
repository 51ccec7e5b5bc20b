"""Notebook views (``_repr_html_``) of sources, catalogs and the ``.zspy`` accessor.

In the spirit of xarray's HTML repr: a heading, an axes table, the metadata as a
collapsible tree of ``<details>`` and, when it is cheap, a thumbnail embedded as a
``data:`` URI. Cheap means bounded: a thumbnail is drawn only when the signal holds at
most :data:`REPR_PREVIEW_BYTES` (stored bytes for a store, in-memory bytes for an
xarray object), and the view says which. Every string is escaped with :func:`esc`; no
storage option is shown.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from intake_zspy.archive._html import esc, format_bytes, raw_bytes, shape_text

__all__ = ["REPR_PREVIEW_BYTES", "catalog_html", "dataset_html", "source_html"]

#: The most bytes a notebook view reads to draw a thumbnail.
REPR_PREVIEW_BYTES = 8 * 1000**2
#: The most metadata entries a view shows (the rest is counted, not shown).
MAX_TREE_ITEMS = 400
_MAX_VALUE = 200

_STYLE = """<style>
.zspy-view{font:13px/1.4 system-ui,sans-serif;border-left:3px solid #4a7ab5;padding:.3em .8em}
.zspy-view .zspy-head{font-weight:bold}.zspy-view .zspy-muted{color:#666;font-weight:normal}
.zspy-view table{border-collapse:collapse;margin:.3em 0}
.zspy-view th,.zspy-view td{border-bottom:1px solid #ddd;padding:.15em .6em;text-align:left}
.zspy-view details{margin-left:.8em}.zspy-view summary{cursor:pointer}
.zspy-view ul{list-style:none;margin:0;padding-left:1em}.zspy-view .zspy-k{color:#555}
.zspy-view .zspy-err{color:#a8071a}.zspy-view img{max-width:480px;border:1px solid #ccc}
</style>"""


def _value(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = " ".join(text.split())
    return esc(text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…")


def tree_html(tree: Mapping[str, Any], budget: list[int] | None = None) -> str:
    """A nested mapping as ``<ul>`` lists, groups in collapsible ``<details>``."""
    budget = budget if budget is not None else [MAX_TREE_ITEMS]
    items: list[str] = []
    for key, value in tree.items():
        if budget[0] <= 0:
            items.append(f'<li class="zspy-muted">… {len(tree) - len(items)} more</li>')
            break
        budget[0] -= 1
        if isinstance(value, Mapping):
            inner = tree_html(value, budget)
            items.append(f"<li><details><summary>{esc(key)}</summary>{inner}</details></li>")
        else:
            items.append(f'<li><span class="zspy-k">{esc(key)}</span>: {_value(value)}</li>')
    return "<ul>" + "".join(items) + "</ul>"


def _section(name: str, tree: Any) -> str:
    if not isinstance(tree, Mapping) or not tree:
        return ""
    return f"<details><summary>{esc(name)} ({len(tree)})</summary>{tree_html(tree)}</details>"


def _axes_table(axes: Iterable[Mapping[str, Any]]) -> str:
    head = "<tr><th>dim</th><th>name</th><th>size</th><th>units</th><th>kind</th></tr>"
    rows = "".join(
        f"<tr><td>{esc(a.get('dim'))}</td><td>{esc(a.get('name'))}</td>"
        f"<td>{esc(a.get('size'))}</td><td>{esc(a.get('units'))}</td>"
        f"<td>{'signal' if a.get('navigate') is False else 'navigation'}</td></tr>"
        for a in axes
    )
    return f"<table>{head}{rows}</table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def _thumbnail(draw: Any, nbytes: int | None, what: str) -> str:
    """The thumbnail (``draw()`` -> PNG) when ``nbytes`` is within the limit, and a note."""
    limit = REPR_PREVIEW_BYTES
    if nbytes is None or nbytes > limit:
        size = "unknown size" if nbytes is None else format_bytes(nbytes)
        return (
            f'<div class="zspy-muted">no thumbnail: {esc(size)} {esc(what)}, above the '
            f"{esc(format_bytes(limit))} a notebook view reads</div>"
        )
    try:
        png = draw()
    except Exception as exc:  # noqa: BLE001 - a view never fails over its picture
        return f'<div class="zspy-muted">no thumbnail: {esc(exc)}</div>'
    note = f"thumbnail from {format_bytes(nbytes)} {what} (at most {format_bytes(limit)} read)"
    return f'{_img(png, "preview")}<div class="zspy-muted">{esc(note)}</div>'


def _view(heading: str, sub: str, body: str) -> str:
    return (
        f'{_STYLE}<div class="zspy-view"><div class="zspy-head">{esc(heading)} '
        f'<span class="zspy-muted">{esc(sub)}</span></div>{body}</div>'
    )


def source_html(urlpath: str, signal: str | None, storage_options: Mapping[str, Any]) -> str:
    """The notebook view of one signal of a store: summary, axes, metadata, thumbnail."""
    from intake_zspy.archive._thumbs import draw_thumbnail
    from intake_zspy.ops.describe import describe

    try:
        doc = describe(
            urlpath,
            signal=signal,
            metadata=True,
            original_metadata=True,
            storage_options=storage_options or None,
        )
    except Exception as exc:  # noqa: BLE001 - show the error instead of a traceback
        return _view(
            "ZspySource",
            urlpath,
            f'<div class="zspy-err">{esc(type(exc).__name__)}: {esc(exc)}</div>',
        )
    s = doc["signals"][0]
    sub = f"{s['signal_type'] or 'signal'} · {shape_text({'axes': s['dims'], 'shape': s['shape']})} {s['dtype']}"
    facts = (
        f"<div>{esc(urlpath)} [{esc(s['name'])}] · {esc(doc['store_kind'])} · chunks "
        f"{esc('x'.join(str(c) for c in s['chunks']))} · stored "
        f"{esc(format_bytes(s['stored_bytes']))} of {esc(format_bytes(s['nbytes']))}</div>"
    )
    thumb = _thumbnail(
        lambda: draw_thumbnail(urlpath, s["name"], storage_options or None),
        s["stored_bytes"],
        "stored",
    )
    body = (
        facts
        + _axes_table(s["dims"])
        + _section("metadata", s.get("metadata"))
        + _section("original_metadata", s.get("original_metadata"))
        + thumb
    )
    return _view(str(s["title"] or s["name"]), sub, body)


def catalog_html(name: str, urlpath: str, entries: Mapping[str, Any]) -> str:
    """The notebook view of a catalog: one row per entry (no data read)."""
    head = "<tr><th>entry</th><th>title</th><th>signal type</th><th>shape</th><th>size</th></tr>"
    rows = []
    for key, entry in entries.items():
        described = entry.describe()
        meta = described.get("metadata") or {}
        if meta.get("error"):
            cells = f'<td colspan="4" class="zspy-err">unreadable: {esc(meta.get("error_type"))}: {esc(meta["error"])}</td>'
        else:
            signals = meta.get("signals") or {}
            first: Mapping[str, Any] = next(iter(signals.values()), meta)
            cells = (
                f"<td>{esc(meta.get('title', first.get('title')))}</td>"
                f"<td>{esc(meta.get('signal_type', first.get('signal_type')))}</td>"
                f"<td>{esc(shape_text(first))} {esc(first.get('dtype', ''))}</td>"
                f"<td>{esc(format_bytes(meta.get('size', raw_bytes(first))))}</td>"
            )
        rows.append(f"<tr><td><b>{esc(key)}</b></td>{cells}</tr>")
    table = f"<table>{head}{''.join(rows)}</table>"
    return _view(name, f"{len(rows)} entries · {urlpath}", table)


def dataset_html(obj: Any) -> str:
    """The notebook view of a signal as an xarray object (the ``.zspy`` accessor)."""
    import xarray as xr

    ds = obj.to_dataset(name="data") if isinstance(obj, xr.DataArray) else obj
    if "data" not in ds.data_vars and len(ds.data_vars) == 1:
        ds = ds.rename({next(iter(ds.data_vars)): "data"})
    attrs = {**ds.attrs, **(ds["data"].attrs if "data" in ds else {})}
    axes = []
    if "data" in ds:
        for dim, size in zip(ds["data"].dims, ds["data"].shape, strict=True):
            coord = ds.coords.get(dim)
            a = coord.attrs if coord is not None else {}
            axes.append(
                {
                    "dim": dim,
                    "name": a.get("long_name", dim),
                    "size": size,
                    "units": a.get("units"),
                    "navigate": a.get("navigate", True),
                }
            )
    summary = {"axes": axes, "shape": [a["size"] for a in axes]}
    dtype = str(ds["data"].dtype) if "data" in ds else ""
    sub = f"{attrs.get('signal_type') or 'signal'} · {shape_text(summary)} {dtype}"

    def draw() -> bytes:
        from intake_zspy.archive._thumbs import dataset_thumbnail

        return dataset_thumbnail(ds)

    nbytes = int(ds["data"].nbytes) if "data" in ds else None
    body = (
        _axes_table(axes)
        + _section("metadata", attrs.get("metadata"))
        + _section("original_metadata", attrs.get("original_metadata"))
        + _thumbnail(draw, nbytes, "of data")
    )
    return _view(str(attrs.get("title") or "untitled signal"), sub, body)
