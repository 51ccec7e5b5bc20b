"""Previews from Python (:mod:`intake_zspy.preview`): sums, panels, labels and markers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import intake_zspy
from intake_zspy import PreviewError
from intake_zspy.preview import compute_sums, preview_figure, preview_png, read_markers
from tests.builders import (
    EELS,
    X,
    build_store,
    eels_data,
    encode_store,
    image_store,
    read_png,
    signal_dict,
    uniform_axis,
    write_dir,
)
from tests.conftest import CORPUS


def ragged(*items: Any) -> np.ndarray:
    """An object array with one entry per navigation position (HyperSpy's ragged markers)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = np.asarray(item)
    return out


POINTS = ragged([[1.0, 2.0]], [[3.0, 1.0], [4.0, 0.5]], [[0.5, 0.5]])
TEXTS_AT = ragged([[2.0, 2.0]], [[1.0, 3.0]], [[3.0, 3.0]])
TEXTS = ragged(["first"], ["second"], ["third"])
SEGMENTS = np.array([[[0.0, 300.0], [2.0, 900.0]]])


def marker_store(path: Path) -> Path:
    """Unnamed axes, no title; points and texts per navigation position, a line on the
    navigator."""
    data = np.arange(3 * 4 * 5, dtype="<f4").reshape(3, 4, 5)
    axes = [
        uniform_axis(3, None),
        uniform_axis(4, None, "nm", navigate=False),
        uniform_axis(5, None, navigate=False),
    ]
    markers = {
        "Points": {
            "class": "Points",
            "name": "Points",
            "plot_on_signal": True,
            "offset_transform": "data",
            "kwargs": {"offsets": POINTS, "sizes": (10,), "units": "points", "color": "red"},
        },
        "Texts": {
            "class": "Texts",
            "plot_on_signal": True,
            "kwargs": {"offsets": TEXTS_AT, "texts": TEXTS},
        },
        "Lines": {"class": "Lines", "plot_on_signal": False, "kwargs": {"segments": SEGMENTS}},
    }
    sig = signal_dict(data, axes, title="", metadata={"Markers": markers})
    return write_dir(encode_store({"__unnamed__": sig}), path)


def drawn(ax: Any, name: str) -> list[Any]:
    """The artists of the marker set ``name`` on ``ax``."""
    artists = [*ax.collections, *ax.texts]
    return [a for a in artists if a.get_label() == f"marker {name}"]


def corpus_store(name: str) -> str:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("no corpus of HyperSpy-written stores here")
    return str(path)


# -- the public API ---------------------------------------------------------------------


def test_preview_png_of_a_url_and_of_an_opened_dataset(tmp_path: Path) -> None:
    store = build_store(tmp_path / "si.zspy")
    assert intake_zspy.preview_figure is preview_figure
    png = preview_png(store)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert read_png(png).shape == (480, 1200)  # the default size with two panels
    assert read_png(preview_png(store, size=(300, 200), dpi=50)).shape == (200, 300)
    # the same picture from a Dataset, lazy or dask-chunked: sums, labels and heading
    for chunks in (None, {}):
        with intake_zspy.open_dataset(store, chunks=chunks) as ds:
            assert preview_png(ds) == png
    with intake_zspy.open_dataset(store) as ds:
        loaded = ds.load()
        fig = preview_figure(loaded, signal=None)
        assert fig.get_suptitle() == "EELS SI / core-loss  [EELS]\nsi.zspy"
        del loaded.encoding["source"]  # a Dataset from nowhere: no store name
        assert preview_figure(loaded).get_suptitle() == "EELS SI / core-loss  [EELS]"


def test_preview_errors_are_typed_and_name_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = build_store(tmp_path / "si.zspy")
    with pytest.raises(PreviewError, match="ragged signals have no fixed shape") as caught:
        preview_figure(store, signal="ragged")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{store}: ")
    texts = signal_dict(np.array([["a", "b"], ["c", "d"]]), title="words")
    text_store = write_dir(encode_store({"words": texts}), tmp_path / "t.zspy")
    with pytest.raises(PreviewError, match=r"t\.zspy: cannot preview data of dtype \|S1"):
        preview_png(str(text_store))
    with intake_zspy.open_dataset(text_store) as ds:  # the Dataset's store is named too
        with pytest.raises(PreviewError, match=r"t\.zspy: cannot preview data of dtype"):
            preview_png(ds)
        with pytest.raises(TypeError, match="apply to a store, not a Dataset"):
            preview_png(ds, signal="words")
    with pytest.raises(intake_zspy.SignalNotFoundError):
        preview_figure(store, signal="nope")
    with pytest.raises(ValueError, match="dpi must be at least 10, not 5"):
        preview_figure(store, dpi=5)
    with pytest.raises(TypeError, match="size must be"):
        preview_figure(store, size=(300,))
    with pytest.raises(ValueError, match="size must be positive"):
        preview_figure(store, size=(0, 300))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install intake-zspy\[preview\]"):
        preview_figure(store)


def test_preview_sums_are_the_data_sums() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "si.zspy")
        ds = intake_zspy.open_dataset(store, chunks={})
        sums = compute_sums(ds)
        data = eels_data().astype("f8")
        assert sums.signal is not None
        assert sums.navigation is not None
        assert sums.signal.dims == ("Energy loss",)
        np.testing.assert_allclose(sums.signal.values, data.sum(axis=(0, 1)))
        assert sums.navigation.dims == ("y", "x")
        np.testing.assert_allclose(sums.navigation.values, data.sum(axis=2), rtol=1e-12)
        np.testing.assert_array_equal(sums.navigation["x"].values, X)
        assert (sums.title, sums.subtitle, sums.quantity) == (
            "EELS SI / core-loss",
            "EELS",
            "Intensity (counts)",
        )
        assert (sums.nav_dims, sums.sig_dims) == (["y", "x"], ["Energy loss"])
        assert ds.attrs["zspy_signal"] == EELS
        ds.close()


# -- layout, labels and markers --------------------------------------------------------


def test_preview_draws_stored_markers(tmp_path: Path) -> None:
    fig = preview_figure(str(marker_store(tmp_path / "m.zspy")))
    signal_ax, nav_ax = fig.axes
    (points,) = drawn(signal_ax, "Points")
    np.testing.assert_array_equal(points.get_offsets(), np.concatenate(list(POINTS)))
    assert tuple(points.get_facecolor()[0]) == (1.0, 0.0, 0.0, 1.0)  # the stored colour
    texts = drawn(signal_ax, "Texts")
    assert [t.get_text() for t in texts] == ["first", "second", "third"]
    assert [t.get_position() for t in texts] == [(2.0, 2.0), (1.0, 3.0), (3.0, 3.0)]
    assert drawn(signal_ax, "Lines") == []  # plot_on_signal False: on the navigator only
    (lines,) = drawn(nav_ax, "Lines")
    np.testing.assert_array_equal(lines.get_segments(), SEGMENTS)
    # the view stays the data's: the image extent (pixel edges), not the markers'
    assert signal_ax.get_xlim() == (-0.5, 4.5)


def test_preview_of_unnamed_axes_and_untitled_signal(tmp_path: Path) -> None:
    fig = preview_figure(str(marker_store(tmp_path / "m.zspy")))
    signal_ax, nav_ax = fig.axes
    assert (signal_ax.get_xlabel(), signal_ax.get_ylabel()) == ("axis 2", "axis 1 (nm)")
    assert nav_ax.get_xlabel() == "axis 0"
    assert signal_ax.get_title() == "signal, summed over navigation (axis 0)"
    assert nav_ax.get_title() == "navigation, summed over the signal (axis 1, axis 2)"
    assert fig.get_suptitle() == "untitled\nm.zspy"  # no "__unnamed__", once or twice
    eels = preview_figure(str(build_store(tmp_path / "si.zspy")))
    assert eels.get_suptitle() == "EELS SI / core-loss  [EELS]\nsi.zspy"  # group = title
    sig = signal_dict(np.ones((2, 3)), title="a title")
    other = write_dir(encode_store({"another name": sig}), tmp_path / "o.zspy")
    assert preview_figure(str(other)).get_suptitle() == "a title\no.zspy: another name"


def test_colour_bar_label_clears_the_next_panel(tmp_path: Path) -> None:
    """The left image's colour bar and its label end well before the right panel's
    labels, and nothing spills out of the picture (measured on the rendered figure)."""
    store = str(image_store(tmp_path / "images.zspy"))
    for size, dpi in (((1200, 480), 100), ((800, 300), 80), ((640, 480), 100)):
        fig = preview_figure(store, size=size, dpi=dpi)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        image_ax, line_ax = fig.axes
        colorbar = image_ax.images[0].colorbar
        label = colorbar.ax.yaxis.label
        assert label.get_text() == "Intensity"
        label_box = label.get_window_extent(renderer)
        bar = colorbar.ax.get_tightbbox(renderer)  # the bar, its ticks and its label
        assert label_box.width > 0
        assert bar.x1 >= label_box.x1
        assert image_ax.get_window_extent(renderer).x1 < colorbar.ax.get_window_extent().x0
        right = line_ax.get_tightbbox(renderer)  # with its y label and tick labels
        # at least 0.15 inch apart (the default constrained layout left 7 to 11 pixels)
        assert right.x0 - bar.x1 >= 0.15 * dpi, (size, bar, right)
        assert not label_box.overlaps(line_ax.yaxis.label.get_window_extent(renderer))
        for ax in fig.axes:  # nothing drawn outside the picture (titles included)
            box = ax.get_tightbbox(renderer)
            assert 0 <= box.x0 < box.x1 <= size[0], (size, box)


def test_preview_markers_of_the_hyperspy_corpus() -> None:
    """Points (20 navigation positions, one point each) and Texts (two per position)."""
    points_store = corpus_store("signal2d_20x10x10-ragged_markers.zspy")
    stored = intake_zspy.open_dataset(points_store).attrs["metadata"]["Markers"]
    fig = preview_figure(points_store)
    (points,) = drawn(fig.axes[0], "Points")
    offsets = np.stack(list(stored["Points"]["kwargs"]["offsets"]))
    assert offsets.shape == (20, 2)
    np.testing.assert_array_equal(points.get_offsets(), offsets)
    assert tuple(points.get_facecolor()[0][:3]) == (1.0, 0.6470588235294118, 0.0)  # orange
    assert "__unnamed__" not in fig.get_suptitle()

    texts_store = corpus_store("signal2d_20x10x10-ragged_markers_unicode.zspy")
    stored = intake_zspy.open_dataset(texts_store).attrs["metadata"]["Markers"]
    texts = drawn(preview_figure(texts_store).axes[0], "Texts")
    kwargs = stored["Texts"]["kwargs"]
    # one offset per position: each takes the position's first text
    assert [t.get_text() for t in texts] == [str(e[0]) for e in kwargs["texts"]]
    assert [t.get_position() for t in texts] == [tuple(p) for p in kwargs["offsets"]]


def test_read_markers_of_other_kinds() -> None:
    hyperspy1 = {
        "marker_type": "Text",
        "plot_on_signal": True,
        "data": {"x1": np.array([1.0, 2.0]), "y1": 3.0, "text": "peak"},
        "marker_properties": {"color": "blue"},
    }
    rectangle = {
        "marker_type": "Rectangle",
        "data": {"x1": 0.0, "y1": 0.0, "x2": 1.0, "y2": 2.0},
    }
    vlines = {"class": "VerticalLines", "kwargs": {"offsets": np.array([1.0, 2.0])}}
    circles = {"class": "Circles", "kwargs": {"offsets": [[1.0, 1.0]], "sizes": 3}}
    unknown = {"class": "Unknown", "kwargs": {"width": 3}}
    markers = read_markers(
        {"a": hyperspy1, "b": rectangle, "c": vlines, "d": circles, "e": unknown, "f": 3}
    )
    text, rect, lines, circle = markers
    assert (text.kind, text.texts, text.color) == ("texts", ["peak", "peak"], "blue")
    np.testing.assert_array_equal(text.offsets, [[1.0, 3.0], [2.0, 3.0]])
    assert rect.kind == "segments"
    assert rect.segments.shape == (4, 2, 2)
    assert (lines.kind, lines.positions.tolist()) == ("vlines", [1.0, 2.0])
    assert (circle.kind, circle.offsets.tolist()) == ("points", [[1.0, 1.0]])
    with pytest.warns(intake_zspy.ZspyWarning, match="marker 'bad' not drawn"):
        assert read_markers({"bad": {"class": "Points", "kwargs": {"offsets": [1, 2, 3]}}}) == []
