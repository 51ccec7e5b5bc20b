"""Notebook views: ``_repr_html_`` of the source, both catalogs and the ``.zspy`` accessor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import intake_zspy
from intake_zspy.archive import _repr
from intake_zspy.catalog import ZspyExperimentsCatalog, ZspyStoresCatalog
from intake_zspy.source import ZspySource
from tests.builders import EELS, build_store
from tests.test_82_browse import HOSTILE, Page, archive, hostile_store


def texts(page: Page, tag: str) -> list[str]:
    """Tags of ``tag`` in document order (attributes), for counting."""
    return [str(a) for t, a in page.elements if t == tag]


class View(Page):
    """A view's HTML with all its text, to check what a reader sees."""

    def __init__(self, text: str) -> None:
        self.words: list[str] = []
        super().__init__(text)

    def handle_data(self, data: str) -> None:
        super().handle_data(data)
        if not self._in_script:
            self.words.append(data)

    @property
    def text(self) -> str:
        return "".join(self.words)


def test_source_view_has_summary_axes_metadata_and_a_bounded_thumbnail(tmp_path: Path) -> None:
    store = build_store(tmp_path / "si.zspy")
    view = View(ZspySource(str(store), signal=EELS)._repr_html_())
    assert "EELS SI / core-loss" in view.text
    assert "EELS · (8, 6|32) float32" in view.text
    assert "chunks 2x4x32" in view.text
    cells = [t for t, _ in view.elements if t == "td"]
    assert len(cells) == 3 * 5  # three axes, five columns
    assert "Energy loss" in view.text
    assert "signal" in view.text
    summaries = [t for t, _ in view.elements if t == "summary"]
    assert len(summaries) >= 4  # metadata, original_metadata and their groups
    assert "beam_energy: 200.0" in view.text
    (img,) = [a for t, a in view.elements if t == "img"]
    assert str(img["src"]).startswith("data:image/png;base64,iVBOR")
    assert "thumbnail from" in view.text
    assert "(at most 8.0 MB read)" in view.text


def test_source_view_of_a_large_signal_says_why_there_is_no_thumbnail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = build_store(tmp_path / "si.zspy")
    monkeypatch.setattr(_repr, "REPR_PREVIEW_BYTES", 100)
    view = View(ZspySource(str(store), signal=EELS)._repr_html_())
    assert texts(view, "img") == []
    assert "no thumbnail:" in view.text
    assert "above the 100 B a notebook view reads" in view.text


def test_views_escape_hostile_stores(tmp_path: Path) -> None:
    store = hostile_store(tmp_path / "evil.zspy")
    for html in (
        ZspySource(str(store))._repr_html_(),
        ZspyExperimentsCatalog(str(store))._repr_html_(),
        ZspyStoresCatalog(str(tmp_path))._repr_html_(),
        intake_zspy.open_dataset(store).zspy._repr_html_(),
    ):
        view = View(html)
        assert view.scripts == []
        assert not any("onerror" in k for _, a in view.elements for k in a)
        assert len(texts(view, "table")) == 1  # ours, never the store's
        assert HOSTILE in view.text  # the title, as the text it is
    source = View(ZspySource(str(store))._repr_html_())
    assert HOSTILE in source.text
    assert '"onerror=' in source.text


def test_source_view_of_a_damaged_store_shows_the_error(tmp_path: Path) -> None:
    (tmp_path / "bad.zspy").write_bytes(b"PK\x03\x04" + bytes(50))
    view = View(ZspySource(str(tmp_path / "bad.zspy"))._repr_html_())
    assert "DamagedStoreError" in view.text


def test_catalog_views(tmp_path: Path) -> None:
    archive(tmp_path / "data")
    view = View(ZspyStoresCatalog(str(tmp_path / "data"))._repr_html_())
    rows = [t for t, _ in view.elements if t == "tr"]
    assert len(rows) == 1 + 7
    assert "7 entries" in view.text
    assert "unreadable: DamagedStoreError" in view.text
    assert "(4, 6|8) float32" in view.text
    store = build_store(tmp_path / "two.zspy")
    two = View(ZspyExperimentsCatalog(str(store))._repr_html_())
    assert "2 entries" in two.text
    assert "EELS SI / core-loss" in two.text
    assert "(8, 6|32) float32" in two.text


def test_accessor_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = intake_zspy.open_dataset(build_store(tmp_path / "si.zspy"), signal=EELS)
    view = View(ds.zspy._repr_html_())
    assert "EELS SI / core-loss" in view.text
    assert "(8, 6|32) float32" in view.text
    assert len(texts(view, "img")) == 1
    assert "of data (at most 8.0 MB read)" in view.text
    da = View(ds["data"].zspy._repr_html_())
    assert "(8, 6|32) float32" in da.text
    monkeypatch.setattr(_repr, "REPR_PREVIEW_BYTES", 1000)
    big = View(ds.zspy._repr_html_())
    assert texts(big, "img") == []
    assert f"{6 * 8 * 32 * 4 / 1000:.1f} kB of data" in big.text
    plain = View(
        intake_zspy.open_dataset(build_store(tmp_path / "p.zspy"), signal=EELS)
        .isel(x=0)
        .zspy._repr_html_()
    )
    assert "navigation" in plain.text
    assert np.isfinite(ds["data"].values).all()
