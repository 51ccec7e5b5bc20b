"""``intake-zspy preview`` and ``intake-zspy catalog`` (with previews), run as programs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import intake
import numpy as np
import pytest
import yaml

import intake_zspy
from intake_zspy.cli import main
from intake_zspy.cli._render import compute_sums, read_markers
from intake_zspy.cli.preview import preview_figure
from tests.builders import encode_store, signal_dict, uniform_axis, write_dir
from tests.conftest import zip_directory
from tests.s3server import upload
from tests.test_90_cli import EELS, SHAPE, X, build_store, cli, eels_data, ragged_data


def read_png(path: Path) -> np.ndarray:
    """The picture as grey levels in [0, 1] (rows, columns)."""
    from matplotlib.image import imread

    rgba = imread(path)
    assert rgba.dtype == np.float32
    return np.asarray(rgba[..., :3].mean(axis=-1))


def assert_not_blank(grey: np.ndarray) -> None:
    """Both halves (the two panels) hold a picture: varied, and far from all white."""
    for half in np.array_split(grey, 2, axis=1):
        assert half.std() > 0.1, half.std()
        assert (half < 0.5).mean() > 0.01  # some dark ink: lines, text, image pixels


def image_store(path: Path) -> Path:
    """A stack of 3 images of 16 x 16 pixels: one navigation dim, a 2-D signal."""
    y, x = np.mgrid[0:16, 0:16]
    data = np.stack([np.exp(-((x - 8) ** 2 + (y - 5 - k) ** 2) / 20) for k in range(3)])
    axes = [
        uniform_axis(3, "time", "s", scale=2.0),
        uniform_axis(16, "y", "nm", scale=0.1, navigate=False),
        uniform_axis(16, "x", "nm", scale=0.1, navigate=False),
    ]
    sig = signal_dict(data.astype("<f4"), axes, title="spot drift", signal_type="")
    return write_dir(encode_store({"spot drift": sig}), path)


def ragged_store(path: Path) -> Path:
    sig = signal_dict(
        ragged_data(), [uniform_axis(2, "y"), uniform_axis(3, "x")], attributes={"ragged": True}
    )
    return write_dir(encode_store({"ragged": sig}), path)


# -- preview --------------------------------------------------------------------------


def test_preview_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = build_store(tmp_path / "si.zspy")
    images = image_store(tmp_path / "images.zspy")
    eels_png, stack_png = tmp_path / "eels.png", tmp_path / "out" / "stack.png"
    run = cli("preview", store, "-o", eels_png)
    assert run.rc == 0, run.err
    assert run.out.startswith(f"wrote {eels_png} (")
    stack_args = ["-o", str(stack_png), "--size", "800x300", "--dpi", "80", "--log"]
    assert main(["preview", str(images), *stack_args]) == 0
    eels = read_png(eels_png)
    assert eels.shape == (480, 1200)  # the default size with two panels
    assert_not_blank(eels)
    stack = read_png(stack_png)
    assert stack.shape == (300, 800)
    assert_not_blank(stack)


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
        ds.close()


def test_preview_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = build_store(tmp_path / "si.zspy")
    out = tmp_path / "p.png"
    assert main(["preview", str(store), "--signal", "ragged", "-o", str(out)]) == 2
    assert "ragged signals have no fixed shape to sum: no preview" in capsys.readouterr().err
    assert not out.exists()
    out.write_bytes(b"keep me")
    assert main(["preview", str(store), "-o", str(out)]) == 2
    assert f"{out}: already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(["preview", str(store), "-o", str(out), "--overwrite", "--size", "400x300"]) == 0
    assert read_png(out).shape == (300, 400)


# -- layout, labels and markers --------------------------------------------------------

CORPUS = Path("/work/shared/corpus-dev")


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


def test_preview_draws_stored_markers(tmp_path: Path) -> None:
    fig = preview_figure(str(marker_store(tmp_path / "m.zspy")), {})
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
    fig = preview_figure(str(marker_store(tmp_path / "m.zspy")), {})
    signal_ax, nav_ax = fig.axes
    assert (signal_ax.get_xlabel(), signal_ax.get_ylabel()) == ("axis 2", "axis 1 (nm)")
    assert nav_ax.get_xlabel() == "axis 0"
    assert signal_ax.get_title() == "signal, summed over navigation (axis 0)"
    assert nav_ax.get_title() == "navigation, summed over the signal (axis 1, axis 2)"
    assert fig.get_suptitle() == "untitled\nm.zspy"  # no "__unnamed__", once or twice
    eels = preview_figure(str(build_store(tmp_path / "si.zspy")), {})
    assert eels.get_suptitle() == "EELS SI / core-loss  [EELS]\nsi.zspy"  # group = title
    sig = signal_dict(np.ones((2, 3)), title="a title")
    other = write_dir(encode_store({"another name": sig}), tmp_path / "o.zspy")
    assert preview_figure(str(other), {}).get_suptitle() == "a title\no.zspy: another name"


def test_colour_bar_label_clears_the_next_panel(tmp_path: Path) -> None:
    """The left image's colour bar and its label end well before the right panel's
    labels, and nothing spills out of the picture (measured on the rendered figure)."""
    store = str(image_store(tmp_path / "images.zspy"))
    for size, dpi in (((1200, 480), 100), ((800, 300), 80), ((640, 480), 100)):
        fig = preview_figure(store, {}, size=size, dpi=dpi)
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


def corpus_store(name: str) -> str:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("no corpus of HyperSpy-written stores here")
    return str(path)


def test_preview_markers_of_the_hyperspy_corpus(tmp_path: Path) -> None:
    """Points (20 navigation positions, one point each) and Texts (two per position)."""
    points_store = corpus_store("signal2d_20x10x10-ragged_markers.zspy")
    stored = intake_zspy.open_dataset(points_store).attrs["metadata"]["Markers"]
    fig = preview_figure(points_store, {})
    (points,) = drawn(fig.axes[0], "Points")
    offsets = np.stack(list(stored["Points"]["kwargs"]["offsets"]))
    assert offsets.shape == (20, 2)
    np.testing.assert_array_equal(points.get_offsets(), offsets)
    assert tuple(points.get_facecolor()[0][:3]) == (1.0, 0.6470588235294118, 0.0)  # orange
    assert "__unnamed__" not in fig.get_suptitle()

    texts_store = corpus_store("signal2d_20x10x10-ragged_markers_unicode.zspy")
    stored = intake_zspy.open_dataset(texts_store).attrs["metadata"]["Markers"]
    texts = drawn(preview_figure(texts_store, {}).axes[0], "Texts")
    kwargs = stored["Texts"]["kwargs"]
    # one offset per position: each takes the position's first text
    assert [t.get_text() for t in texts] == [str(e[0]) for e in kwargs["texts"]]
    assert [t.get_position() for t in texts] == [tuple(p) for p in kwargs["offsets"]]
    png = tmp_path / "corpus.png"
    assert main(["preview", texts_store, "-o", str(png)]) == 0
    assert read_png(png).shape == (480, 1200)


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


# -- catalog --------------------------------------------------------------------------


def test_catalog_of_a_folder_with_previews(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    build_store(folder / "si.zspy")
    (folder / "sub").mkdir()
    zip_directory(image_store(tmp_path / "images.zspy"), folder / "sub" / "images.zspy")
    ragged_store(folder / "ragged.zspy")
    (folder / "broken.zspy").write_bytes(b"not a zip file")
    out = tmp_path / "out"
    run = cli("catalog", folder, "-o", out / "catalog.yml", "--previews", out / "previews")
    assert run.rc == 0, run.err
    assert "no preview of ragged: " in run.err
    assert "4 entries (1 unreadable), 2 previews" in run.err
    cat = intake.open_catalog(str(out / "catalog.yml"))
    assert sorted(cat) == ["broken", "ragged", "si", "sub/images"]
    assert cat["broken"].metadata["error_type"] == "ZspyFormatError"
    assert "preview" not in cat["ragged"].metadata
    for name, shape in (("si", (480, 1200)), ("sub/images", (480, 1200))):
        ref = cat[name].metadata["preview"]
        assert ref == f"previews/{name}.png"  # relative to the catalog file
        grey = read_png(out / ref)
        assert grey.shape == shape
        assert_not_blank(grey)
    assert cat["si"].metadata["title"] == "EELS SI / core-loss"
    ds = cat["si"].read()
    assert ds["data"].shape == SHAPE
    assert ds.attrs["zspy_signal"] == EELS
    again = ["catalog", str(folder), "-o", str(out / "catalog.yml")]
    assert main(again) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main([*again, "--overwrite", "--name", "lab"]) == 0
    assert yaml.safe_load((out / "catalog.yml").read_text())["name"] == "lab"


def test_catalog_of_an_s3_prefix(
    tmp_path: Path,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = build_store(tmp_path / "si.zspy", with_ragged=False)
    upload(store, f"s3://{s3_bucket}/runs/si.zspy", s3_storage_options)
    zipped = zip_directory(image_store(tmp_path / "images.zspy"), tmp_path / "images.zip")
    upload(zipped, f"s3://{s3_bucket}/runs/images.zspy", s3_storage_options)
    options = json.dumps(s3_storage_options)
    prefix = f"s3://{s3_bucket}/runs/"
    previews = ["--previews", str(tmp_path / "previews"), "--preview-size", "300x200"]
    assert main(["catalog", prefix, "--storage-options", options, *previews]) == 0
    out, err = capsys.readouterr()
    assert "credentials left out of the catalog (key, secret)" in err
    doc = yaml.safe_load(out)  # written to standard output
    assert sorted(doc["sources"]) == ["images", "si"]
    si = doc["sources"]["si"]
    assert si["args"]["urlpath"] == f"s3://{s3_bucket}/runs/si.zspy"
    kept = si["args"]["storage_options"]
    assert "key" not in kept
    assert "secret" not in kept
    assert kept["endpoint_url"] == s3_storage_options["endpoint_url"]
    preview = Path(si["metadata"]["preview"])  # no catalog file: the path as written
    assert preview == tmp_path / "previews" / "si.png"
    assert read_png(preview).shape == (200, 300)

    path = tmp_path / "catalog.yml"
    run = cli("catalog", prefix, "-o", path, "--storage-options", options, "--keep-credentials")
    assert run.rc == 0, run.err
    assert run.err == f"intake-zspy catalog: 2 entries, written to {path}\n"
    cat = intake.open_catalog(str(path))
    assert cat["si"].read()["data"].shape == SHAPE
    assert cat["images"].metadata["store_kind"] == "zip"
