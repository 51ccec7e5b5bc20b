"""The one summary of a signal: title, type, shape, dtype and axes, from metadata
documents alone.

The intake source puts it in ``discover()``'s metadata, the catalogs in every entry,
and :func:`~intake_zspy.ops.describe` builds on it. It reads no array and decodes no
dictionary, so a folder catalog can summarise thousands of stores from a handful of
documents each, and it never fails: what a document does not say is left empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from intake_zspy.format import names
from intake_zspy.format.model import dim_names_for
from intake_zspy.format.zarray import parse_dtype

if TYPE_CHECKING:
    from intake_zspy.format.decode import ZspyFile
    from intake_zspy.format.hierarchy import Hierarchy

__all__ = ["summarize_file", "summarize_signal", "summary_line"]


def _plain(value: Any) -> Any:
    """``None`` for HyperSpy's ``"_None_"``; numbers and strings as plain Python."""
    if value is None or value == names.NONE:
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _text(value: Any) -> str | None:
    value = _plain(value)
    return None if value is None else str(value)


def summarize_signal(h: Hierarchy, name: str) -> dict[str, Any]:
    """Summarise signal ``name`` of a store from its metadata documents.

    Parameters
    ----------
    h
        The store's metadata documents (complete, or only those a summary reads: the
        signal's ``.zattrs``, ``data/.zarray``, ``axis-<i>/.zattrs`` and
        ``metadata/General`` and ``metadata/Signal`` attributes).
    name
        The ``Experiments/<name>`` group.

    Returns
    -------
    dict
        Plain Python values (JSON- and YAML-safe): ``signal``, ``title``,
        ``signal_type``, ``shape``, ``dtype``, ``chunks`` (the stored chunk shape, empty
        when unknown) and ``axes``, one per dim in array order with ``dim`` (the
        Dataset's dim name), ``name``, ``units``, ``navigate`` and ``size``. When the
        metadata has them: ``date`` and ``time`` (``General``), ``instrument`` (the
        ``Acquisition_instrument`` groups, e.g. ``"TEM"``) and ``beam_energy`` (kV).
    """
    path = f"{names.EXPERIMENTS}/{name}"
    title = _text(h.attrs(f"{path}/{names.METADATA}/General").get("title"))
    signal_type = _text(h.attrs(f"{path}/{names.METADATA}/Signal").get("signal_type"))
    zarray = h.docs.get(f"{path}/{names.DATA}/{names.ZARRAY}", {})
    try:
        shape = [int(n) for n in zarray.get("shape", [])]
    except (TypeError, ValueError):
        shape = []
    try:
        chunks = [int(n) for n in zarray.get("chunks", [])]
    except (TypeError, ValueError):
        chunks = []
    try:
        dtype = str(parse_dtype(zarray["dtype"]))
    except (KeyError, TypeError, ValueError):
        dtype = ""
    attrs = [h.attrs(f"{path}/{names.AXIS_PREFIX}{i}") for i in range(len(shape))]
    axis_names = [_text(a.get("name")) for a in attrs]
    axes = []
    for dim, axis_name, a, size in zip(
        dim_names_for(axis_names), axis_names, attrs, shape, strict=True
    ):
        navigate = a.get("navigate")
        axes.append(
            {
                "dim": dim,
                "name": axis_name,
                "units": _text(a.get("units")),
                "navigate": navigate if isinstance(navigate, bool) else None,
                "size": size,
            }
        )
    return {
        "signal": name,
        "title": title or "",
        "signal_type": signal_type or "",
        "shape": shape,
        "dtype": dtype,
        "chunks": chunks if len(chunks) == len(shape) else [],
        "axes": axes,
        **_acquisition(h, f"{path}/{names.METADATA}"),
    }


def _acquisition(h: Hierarchy, metadata: str) -> dict[str, Any]:
    """``date``, ``time``, ``instrument`` and ``beam_energy`` where the metadata has them."""
    general = h.attrs(f"{metadata}/General")
    found: dict[str, Any] = {k: _text(general.get(k)) for k in ("date", "time")}
    instrument_path = f"{metadata}/Acquisition_instrument"
    kinds = h.groups(instrument_path)
    found["instrument"] = ", ".join(kinds) or None
    for kind in kinds:
        energy = _plain(h.attrs(f"{instrument_path}/{kind}").get("beam_energy"))
        if isinstance(energy, int | float) and not isinstance(energy, bool):
            found["beam_energy"] = energy
            break
    return {k: v for k, v in found.items() if v is not None}


def summarize_file(file: ZspyFile) -> list[dict[str, Any]]:
    """:func:`summarize_signal` for every signal of an opened store."""
    return [summarize_signal(file.hierarchy, name) for name in file.signal_names()]


def summary_line(summary: Mapping[str, Any]) -> str:
    """One line for a summary: ``"<title> (<signal type>), <dtype> <shape>"``."""
    title = summary.get("title") or summary.get("signal", "")
    kind = summary.get("signal_type") or "signal"
    shape = "x".join(str(n) for n in summary.get("shape", [])) or "scalar"
    dtype = summary.get("dtype", "")
    return f"{title} ({kind}), {dtype} {shape}".strip()
