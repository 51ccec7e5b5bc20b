"""``browse``: the HTML index of a folder, parsed and checked element by element."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import intake_zspy
from intake_zspy.archive import BrowseReport, browse, browse_report
from intake_zspy.archive._incremental import STATE_FILE, State
from intake_zspy.cli import main
from tests.builders import encode_store, image_store, signal_dict, uniform_axis, write_dir
from tests.s3server import upload
from tests.test_72_catalog import write_folder

#: Markup a hostile store puts in its title, metadata keys and values.
HOSTILE = "<script>document.body.setAttribute('data-pwned','1')</script>\"onerror=alert(1) </table>"


def hostile_store(path: Path) -> Path:
    """A readable store whose title and metadata are made of markup."""
    data = np.arange(2 * 6, dtype="<f4").reshape(2, 6)
    axes = [uniform_axis(2, "x<b>", "nm"), uniform_axis(6, "E", "</td>", navigate=False)]
    sig = signal_dict(
        data,
        axes,
        title=HOSTILE,
        signal_type='EELS"><img src=x onerror=alert(2)>',
        metadata={"General": {"title": HOSTILE, "date": "</table><script>x()</script>"}},
        original_metadata={HOSTILE: {'"onerror=': "</table>"}},
    )
    return write_dir(encode_store({"evil": sig}), path)


def archive(root: Path) -> Path:
    """The catalog test folder (3 readable, 2 damaged stores) plus an image stack and a
    hostile-metadata store."""
    write_folder(root)
    image_store(root / "images" / "drift.zspy")
    hostile_store(root / "hostile.zspy")
    return root


class Page(html.parser.HTMLParser):
    """The parts of the page the tests look at: rows, cells, images, scripts, text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict[str, Any]] = []
        self.scripts: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self._in_script = False
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "tr" and "data-name" in a:
            self.rows.append({"attrs": a, "cells": [], "imgs": []})
        elif tag == "td" and self.rows:
            self._cell = []
            self.rows[-1]["cells"].append(self._cell)
        elif tag == "img" and self.rows:
            self.rows[-1]["imgs"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        elif tag == "tbody":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif self._cell is not None:
            self._cell.append(data)

    def row(self, name: str) -> dict[str, Any]:
        (found,) = [r for r in self.rows if r["attrs"]["data-name"] == name]
        return found

    @staticmethod
    def text(row: dict[str, Any], column: int) -> str:
        return "".join(row["cells"][column])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, BrowseReport]:
    tmp = tmp_path_factory.mktemp("browse")
    data = archive(tmp / "data")
    report = browse_report(str(data), str(tmp / "site"))
    return data, tmp / "site", report


def test_page_lists_every_store_with_its_summary(site: tuple[Path, Path, BrowseReport]) -> None:
    data, out, report = site
    assert report == BrowseReport(str(out / "index.html"), 7, 2, 5, 0, 0)
    page = Page((out / "index.html").read_text())
    names = [r["attrs"]["data-name"] for r in page.rows]
    assert names == ["both", "broken", "corrupt", "hostile", "images/drift", "si", "sub/eds"]
    si = page.row("si")
    assert Page.text(si, 2) == "SI / EELS [SI - EELS]"
    assert Page.text(si, 3) == "EELS"
    assert Page.text(si, 4) == "(4, 6|8) float32"
    assert Page.text(si, 5) == "2x2x8"
    assert si["cells"][6]
    assert Page.text(si, 7) == "768 B"
    assert si["attrs"]["data-types"] == "EELS"
    both = page.row("both")
    assert Page.text(both, 2) == "EDS mapSI / EELS [SI - EELS]"
    assert both["attrs"]["data-types"] == "EDS_TEM EELS"
    assert "intake_zspy.open_dataset(" in Page.text(si, 9)
    assert f"{str(data / 'si.zspy')!r}, signal='SI - EELS'" in Page.text(si, 9)
    assert "catalog entry 'si'" in Page.text(si, 9)
    drift = page.row("images/drift")
    assert Page.text(drift, 4) == "(3|16, 16) float32"
    # the filter's choices: every signal type once
    options = [a.get("value") for t, a in page.elements if t == "option"]
    assert options[0] == ""
    assert "EDS_TEM" in options
    assert "EELS" in options


def test_damaged_stores_are_listed_with_their_error(site: tuple[Path, Path, BrowseReport]) -> None:
    _, out, _ = site
    page = Page((out / "index.html").read_text())
    for name, error in [("broken", "ZspyFormatError"), ("corrupt", "DamagedStoreError")]:
        row = page.row(name)
        assert row["attrs"]["class"] == "damaged"
        assert Page.text(row, 2).startswith(f"unreadable: {error}: ")
        assert row["imgs"] == []
        assert Page.text(row, 0) == "store unreadable"
    assert "unreadable" in page.row("corrupt")["attrs"]["data-search"]


def test_thumbnails_exist_and_are_pngs(site: tuple[Path, Path, BrowseReport]) -> None:
    _, out, _ = site
    page = Page((out / "index.html").read_text())
    srcs = [img["src"] for row in page.rows for img in row["imgs"]]
    assert len(srcs) == 5
    for src in srcs:
        assert src is not None
        assert re.fullmatch(r"thumbs/[0-9a-f]{24}\.png", src)
        assert (out / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (out / "thumbs").iterdir()) == sorted(
        s.split("/")[1] for s in srcs
    )


def test_hostile_metadata_renders_as_text(site: tuple[Path, Path, BrowseReport]) -> None:
    _, out, _ = site
    text = (out / "index.html").read_text()
    page = Page(text)
    assert len(page.scripts) == 1  # the page's own
    assert "pwned" not in page.scripts[0]
    assert not any("onerror" in a for _, attrs in page.elements for a in attrs)
    assert [t for t, _ in page.elements].count("table") == 1
    evil = page.row("hostile")
    assert Page.text(evil, 2) == f"{HOSTILE} [evil]"  # shown as the text it is
    assert Page.text(evil, 3) == 'EELS"><img src=x onerror=alert(2)>'
    assert "</table><script>x()</script>" in Page.text(evil, 8)
    assert len(evil["imgs"]) == 1
    assert evil["imgs"][0]["src"].startswith("thumbs/")
    assert evil["attrs"]["data-types"] == 'EELS"><img src=x onerror=alert(2)>'
    assert "<script>" not in text.split("<tbody>")[1].split("</tbody>")[0]
    assert "&lt;script&gt;document.body" in text


def test_rerun_redraws_only_changed_stores(tmp_path: Path) -> None:
    data = archive(tmp_path / "data")
    out = tmp_path / "site"
    assert browse_report(str(data), str(out)).drawn == 5
    again = browse_report(str(data), str(out))
    assert (again.drawn, again.reused) == (0, 5)
    # change one store (new data, same keys), remove one, add one
    shutil.rmtree(data / "si.zspy")
    sig = signal_dict(np.ones((2, 3, 4), "<f4"), title="changed", signal_type="EELS")
    write_dir(encode_store({"SI - EELS": sig}), data / "si.zspy")
    old_thumbs = set((out / "thumbs").iterdir())
    shutil.rmtree(data / "images")
    image_store(data / "new.zspy")
    third = browse_report(str(data), str(out))
    assert (third.stores, third.drawn, third.reused) == (7, 2, 3)
    page = Page((out / "index.html").read_text())
    assert Page.text(page.row("si"), 2) == "changed [SI - EELS]"
    thumbs = set((out / "thumbs").iterdir())
    assert len(thumbs) == 5
    assert len(old_thumbs - thumbs) == 1
    state = State.parse((out / STATE_FILE).read_bytes())
    assert len(state.entries) == 7
    # other preview settings redraw everything
    assert browse_report(str(data), str(out), max_preview_bytes=10**9).drawn == 5


def test_large_stores_and_previews_off(tmp_path: Path) -> None:
    data = archive(tmp_path / "data")
    out = tmp_path / "site"
    report = browse_report(str(data), str(out), max_preview_bytes=2000)
    page = Page((out / "index.html").read_text())
    si = page.row("si")
    assert si["imgs"] == []
    assert "above the 2.0 kB read limit" in Page.text(si, 0)
    assert (report.drawn, report.without) == (1, 4)  # only sub/eds is small enough
    assert browse(str(data), str(tmp_path / "none"), previews=False).endswith("index.html")
    none = Page((tmp_path / "none" / "index.html").read_text())
    assert all(r["imgs"] == [] for r in none.rows)
    assert not (tmp_path / "none" / "thumbs").exists()


def test_lazy_export_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert intake_zspy.browse is browse
    data = archive(tmp_path / "data")
    out = tmp_path / "site"
    assert main(["browse", str(data), "-o", str(out), "--title", "<Lab> runs"]) == 0
    err = capsys.readouterr().err
    assert "7 stores (2 unreadable); thumbnails: 5 drawn, 0 unchanged" in err
    text = (out / "index.html").read_text()
    assert "<title>&lt;Lab&gt; runs</title>" in text
    assert main(["browse", str(data), "-o", str(out), "--max-preview-size", "nonsense"]) == 2


@pytest.mark.s3
def test_browse_s3_to_s3_without_credentials_in_page(
    tmp_path: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    import fsspec

    data = archive(tmp_path / "data")
    upload(data, f"s3://{s3_bucket}/runs", s3_storage_options)
    options = dict(s3_storage_options)
    index = browse(
        f"s3://{s3_bucket}/runs",
        f"s3://{s3_bucket}/site/",
        storage_options=options,
        target_storage_options=options,
    )
    assert index == f"s3://{s3_bucket}/site/index.html"
    fs = fsspec.filesystem("s3", **options)
    text = fs.cat_file(f"{s3_bucket}/site/index.html").decode()
    page = Page(text)
    assert len(page.rows) == 7
    srcs = [img["src"] for row in page.rows for img in row["imgs"]]
    assert len(srcs) == 5
    for src in srcs:
        assert fs.cat_file(f"{s3_bucket}/site/{src}")[:4] == b"\x89PNG"
    assert options["secret"] not in text
    assert "'secret'" not in text
    assert "endpoint_url" in Page.text(page.row("si"), 9)
    state = json.loads(fs.cat_file(f"{s3_bucket}/site/{STATE_FILE}"))
    assert all(d["digest"] for d in state["stores"].values())
    # ETags in the listing: an unchanged prefix redraws nothing, a rewritten store is redrawn
    assert (
        browse_report(
            f"s3://{s3_bucket}/runs",
            f"s3://{s3_bucket}/site",
            storage_options=options,
            target_storage_options=options,
        ).drawn
        == 0
    )
    fs.pipe_file(f"{s3_bucket}/runs/si.zspy/Experiments/SI - EELS/data/0/0/0", b"x" * 10)
    again = browse_report(
        f"s3://{s3_bucket}/runs",
        f"s3://{s3_bucket}/site",
        storage_options=options,
        target_storage_options=options,
    )
    assert (again.drawn + again.without, again.reused) == (1, 4)


def test_thumbnail_png_draws_lines_and_images() -> None:
    from intake_zspy.archive._png import thumbnail_png
    from tests.builders import read_png

    ramp = np.linspace(0.0, 1.0, 50)
    image = np.add.outer(np.zeros(4), np.arange(8.0))  # brighter to the right
    grey = read_png(thumbnail_png([ramp, image], (208, 40)))
    assert grey.shape == (40, 208)
    line, img = grey[1:-1, 1:99], grey[1:-1, 109:207]
    dark = [np.flatnonzero(line[:, c] < 0.6) for c in (2, 95)]
    assert dark[0].min() > dark[1].max()  # the line rises from left to right
    assert img[20, 14] < img[20, 49] < img[20, 84]  # ramped left to right
    assert img[20, 3] == 1.0  # 80 x 40 pixels for 8 x 4 values: aspect kept, centred
    assert grey[0, 0] < 1.0
    assert grey[20, 103] == 1.0
