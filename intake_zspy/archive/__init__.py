"""Browse an archive: a static HTML index of every store under a folder or bucket prefix,
and rich notebook views of stores and catalogs.

:func:`browse` lists the stores under a URL with
:func:`~intake_zspy.catalog._listing.find_stores` (one listing, a few metadata documents
per store, no array data), draws a small preview of each store's first signal, and
writes ``index.html`` (self-contained: inline CSS and a few lines of JavaScript, no CDN,
no server) beside a ``thumbs/`` folder, locally or to any fsspec URL (``s3://...``)::

    import intake_zspy
    intake_zspy.browse("s3://lab/2026/", "site/")

Re-running over the same URL redraws only the stores whose listing changed (names,
sizes, ETags or modification times: ``.browse-state.json`` remembers them). Damaged
stores are listed with their error. Every string from a store is HTML-escaped and the
page's Content-Security-Policy lets only its own script run; storage credentials never
reach the page. ``intake-zspy browse`` runs it from the command line.
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from intake_zspy.archive._html import Row, render_page
from intake_zspy.archive._incremental import STATE_FILE, Drawn, State, thumbnail_name
from intake_zspy.archive._thumbs import THUMB_SIZE, THUMB_STYLE, draw_thumbnail, too_big

if TYPE_CHECKING:
    from intake_zspy.catalog._listing import StoreInfo

__all__ = ["DEFAULT_MAX_PREVIEW_BYTES", "BrowseReport", "browse", "browse_report"]

#: Stores larger than this (stored bytes) get no thumbnail: drawing reads all the data.
DEFAULT_MAX_PREVIEW_BYTES = 256 * 1000**2
#: Threads reading stores for thumbnails at once.
PREVIEW_WORKERS = 4


@dataclass(frozen=True)
class BrowseReport:
    """What :func:`browse_report` did.

    Attributes
    ----------
    url
        The written ``index.html``.
    stores, unreadable
        Rows on the page, and how many of them are damaged stores.
    drawn
        Thumbnails drawn by this run.
    reused
        Thumbnails kept from the previous run (store and settings unchanged).
    without
        Stores this run looked at but drew no thumbnail for (too large, not previewable).
    """

    url: str
    stores: int
    unreadable: int
    drawn: int
    reused: int
    without: int


def snippet(info: StoreInfo, options: Mapping[str, Any]) -> str:
    """Python code opening the store (credentials left out), and its catalog entry name."""
    args = [repr(info.url)]
    if info.signals:
        args.append(f"signal={info.signals[0]['signal']!r}")
    if options:
        args.append(f"storage_options={options!r}")
    return f"intake_zspy.open_dataset({', '.join(args)})  # catalog entry {info.name!r}"


class _Site:
    """The output folder: the page, the thumbnails and the state, on any filesystem."""

    def __init__(self, out: str, options: Mapping[str, Any] | None) -> None:
        from intake_zspy.storage import resolve

        loc = resolve(out, options, mode="w")
        self.fs, self.root, self.url = loc.fs, loc.path.rstrip("/"), loc.url.rstrip("/")
        self._made: set[str] = set()
        self._lock = threading.Lock()

    def path(self, name: str) -> str:
        return posixpath.join(self.root, name)

    def read(self, name: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self.path(name)))
        except (FileNotFoundError, OSError):
            return None

    def write(self, name: str, data: bytes) -> None:
        path = self.path(name)
        folder = posixpath.dirname(path)
        with self._lock:  # once per folder (on S3 each call is a request)
            if folder not in self._made:
                self.fs.makedirs(folder, exist_ok=True)
                self._made.add(folder)
        self.fs.pipe_file(path, data)

    def remove(self, names: list[str]) -> None:
        for name in names:
            try:
                self.fs.rm_file(self.path(name))
            except (FileNotFoundError, OSError):
                pass


def _settings(limit: int | None) -> str:
    return f"{THUMB_STYLE};{THUMB_SIZE[0]}x{THUMB_SIZE[1]};limit={limit}"


def _draw(
    info: StoreInfo, site: _Site, options: Mapping[str, Any], settings: str, limit: int | None
) -> Drawn:
    from intake_zspy.cli import describe_error

    reason = too_big(info.size, limit)
    if reason:
        return Drawn(info.digest, settings, None, reason)
    name = thumbnail_name(info.url)
    try:
        png = draw_thumbnail(info.url, info.signals[0]["signal"], options or None)
        site.write(name, png)
    except Exception as exc:  # noqa: BLE001 - one bad store must not stop the others
        return Drawn(info.digest, settings, None, f"no preview: {describe_error(exc)}")
    return Drawn(info.digest, settings, name)


def browse_report(
    url: str,
    out: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    target_storage_options: Mapping[str, Any] | None = None,
    previews: bool = True,
    max_preview_bytes: int | None = DEFAULT_MAX_PREVIEW_BYTES,
    title: str | None = None,
    progress: bool = False,
) -> BrowseReport:
    """:func:`browse`, returning a :class:`BrowseReport` (counts of drawn and reused thumbnails).

    Takes the arguments of :func:`browse`.
    """
    import dask

    from intake_zspy._progress import progress_bar
    from intake_zspy.catalog._listing import find_stores
    from intake_zspy.preview import PREVIEW_CHUNK_BYTES
    from intake_zspy.storage import strip_credentials

    options = dict(storage_options or {})
    public_options = strip_credentials(options)[0]
    public_url = str(url)
    site = _Site(out, target_storage_options)
    infos = find_stores(url, options)
    state = State.parse(site.read(STATE_FILE))
    settings = _settings(max_preview_bytes)
    outcome: dict[str, Drawn] = {}
    todo: list[StoreInfo] = []
    reused = 0
    for info in infos:
        old = state.reusable(info.url, info.digest, settings) if previews else None
        if info.error is not None or not info.signals or not previews:
            why = "store unreadable" if info.error else "previews off" if not previews else ""
            outcome[info.url] = Drawn(info.digest, settings, None, why or "no signal")
        elif old is not None:
            outcome[info.url] = old
            reused += 1
        else:
            todo.append(info)
    bar = progress_bar(len(todo), "thumbnails", "store", progress) if todo else None
    config = {"array.chunk-size": PREVIEW_CHUNK_BYTES, "scheduler": "sync"}
    with dask.config.set(config), ThreadPoolExecutor(PREVIEW_WORKERS) as pool:
        futures = {
            i.url: pool.submit(_draw, i, site, options, settings, max_preview_bytes) for i in todo
        }
        for info_url, future in futures.items():
            outcome[info_url] = future.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    rows = [
        Row(
            name=i.name,
            url=i.url,
            size=i.size,
            signals=i.signals,
            snippet=snippet(i, public_options),
            error=None if i.error is None else f"{i.error_type}: {i.error}",
            thumbnail=outcome[i.url].thumbnail,
            no_thumbnail=outcome[i.url].no_thumbnail,
        )
        for i in infos
    ]
    heading = title or posixpath.basename(public_url.rstrip("/")) or public_url
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = render_page(heading, public_url, rows, now)
    new_state = State({i.url: outcome[i.url] for i in infos})
    site.remove(state.stale_thumbnails(set(new_state.entries)))
    site.write("index.html", page.encode("utf-8"))
    site.write(STATE_FILE, new_state.dumps())
    drawn = [outcome[i.url] for i in todo]
    return BrowseReport(
        url=f"{site.url}/index.html",
        stores=len(infos),
        unreadable=sum(1 for i in infos if i.error is not None),
        drawn=sum(1 for d in drawn if d.thumbnail),
        reused=reused,
        without=sum(1 for d in drawn if not d.thumbnail),
    )


def browse(
    url: str,
    out: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    target_storage_options: Mapping[str, Any] | None = None,
    previews: bool = True,
    max_preview_bytes: int | None = DEFAULT_MAX_PREVIEW_BYTES,
    title: str | None = None,
    progress: bool = False,
) -> str:
    """Write a browsable HTML index of every zspy store under ``url`` into ``out``.

    Parameters
    ----------
    url
        A local folder, an fsspec URL prefix (``s3://bucket/runs/``, ``zip::...``) or a
        glob of stores, as for :class:`~intake_zspy.catalog.ZspyStoresCatalog`.
    out
        The folder to write ``index.html``, ``thumbs/`` and ``.browse-state.json`` into:
        a local path or an fsspec URL (``s3://bucket/site/``). Existing files there are
        replaced; thumbnails of stores unchanged since the last run are kept.
    storage_options
        fsspec options for ``url``. Credentials in them never reach the page (the
        snippets show the other options).
    target_storage_options
        fsspec options for ``out``.
    previews
        Draw a thumbnail of each readable store (its first signal, navigation-summed
        signal beside the signal-summed navigation image).
    max_preview_bytes
        Stores with more stored bytes get no thumbnail (the row says so): drawing one
        reads all its data. ``None``: no limit.
    title
        The page's heading (default: the last part of ``url``).
    progress
        Draw a progress bar of the thumbnails on stderr (needs tqdm).

    Returns
    -------
    str
        The URL (or local path) of the written ``index.html``.

    Raises
    ------
    StoreNotFoundError
        Nothing exists under ``url``.
    ImportError
        ``progress`` without tqdm installed. (Without matplotlib, rows say that no
        preview could be drawn.)
    """
    return browse_report(
        url,
        out,
        storage_options=storage_options,
        target_storage_options=target_storage_options,
        previews=previews,
        max_preview_bytes=max_preview_bytes,
        title=title,
        progress=progress,
    ).url
