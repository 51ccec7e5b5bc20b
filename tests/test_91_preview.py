"""``intake-zspy preview`` and ``intake-zspy catalog`` (with previews), run as programs.

What the pictures show (sums, labels, markers) is tested from Python in test_81_preview.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import intake
import numpy as np
import pytest
import yaml

from intake_zspy.cli import main
from intake_zspy.preview import preview_png
from tests.builders import (
    EELS,
    SHAPE,
    build_store,
    encode_store,
    image_store,
    ragged_data,
    read_png,
    signal_dict,
    uniform_axis,
    write_dir,
)
from tests.conftest import CORPUS, zip_directory
from tests.s3server import upload
from tests.test_90_cli import cli


def assert_not_blank(grey: np.ndarray) -> None:
    """Both halves (the two panels) hold a picture: varied, and far from all white."""
    for half in np.array_split(grey, 2, axis=1):
        assert half.std() > 0.1, half.std()
        assert (half < 0.5).mean() > 0.01  # some dark ink: lines, text, image pixels


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
    assert main(["preview", str(store), "-o", str(out), "--overwrite", "--dpi", "5"]) == 2
    assert "--dpi must be at least 10" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(["preview", str(store), "-o", str(out), "--overwrite", "--size", "400x300"]) == 0
    assert read_png(out).shape == (300, 400)


# -- the picture is the library's ------------------------------------------------------


def test_preview_writes_the_library_png(tmp_path: Path) -> None:
    """``intake-zspy preview`` writes :func:`intake_zspy.preview.preview_png`'s bytes."""
    store = image_store(tmp_path / "images.zspy")
    png = tmp_path / "stack.png"
    assert main(["preview", str(store), "-o", str(png), "--size", "640x300", "--log"]) == 0
    assert png.read_bytes() == preview_png(store, size=(640, 300), log=True)


def test_preview_of_a_hyperspy_corpus_store(tmp_path: Path) -> None:
    texts_store = CORPUS / "signal2d_20x10x10-ragged_markers_unicode.zspy"
    if not texts_store.exists():
        pytest.skip("no corpus of HyperSpy-written stores here")
    png = tmp_path / "corpus.png"
    assert main(["preview", str(texts_store), "-o", str(png)]) == 0
    assert read_png(png).shape == (480, 1200)


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
