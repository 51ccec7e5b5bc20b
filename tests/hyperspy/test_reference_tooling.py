"""Tests of the HyperSpy reference tooling (env, fixtures, dumps, decoding).

The tests marked ``hyperspy`` build (or reuse) the HyperSpy venv; set
``INTAKE_ZSPY_HYPERSPY_VENV`` to reuse an existing one and
``INTAKE_ZSPY_NO_HYPERSPY=1`` to skip them. The codec tests run in the main
environment alone.
"""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.hyperspy import env
from tests.hyperspy.dump_reference import encode
from tests.hyperspy.plugin import HyperspyFixtures, ReferenceLoader
from tests.hyperspy.reference import (
    ObjectState,
    OpaqueObject,
    assert_equal_nested,
    decode,
    load_reference,
)

REQUIRED_STORES = {
    "eels_si.zspy": "nested",
    "eels_si_zip.zspy": "zip",
    "eels_si_flat.zspy": "flat",
    "dtypes_int8.zspy": "nested",
    "dtypes_int16.zspy": "nested",
    "dtypes_int32.zspy": "nested",
    "dtypes_int64.zspy": "nested",
    "dtypes_uint8.zspy": "nested",
    "dtypes_uint16.zspy": "nested",
    "dtypes_uint32.zspy": "nested",
    "dtypes_uint64.zspy": "nested",
    "dtypes_float16.zspy": "nested",
    "dtypes_float32.zspy": "nested",
    "dtypes_float64.zspy": "nested",
    "dtypes_complex64.zspy": "nested",
    "dtypes_complex128.zspy": "nested",
    "dtypes_bool.zspy": "nested",
    "dtypes_be_float32.zspy": "nested",
    "dtypes_be_int16.zspy": "nested",
    "dtypes_rgb8.zspy": "nested",
    "dtypes_rgb16.zspy": "nested",
    "axes_nonuniform.zspy": "nested",
    "axes_functional.zspy": "nested",
    "missing_chunks.zspy": "nested",
    "ragged.zspy": "nested",
    "markers.zspy": "nested",
    "model.zspy": "nested",
    "learning.zspy": "nested",
    "nested_signal.zspy": "nested",
    "multi.zspy": "nested",
    "lazy_4dstem.zspy": "nested",
    "unnamed.zspy": "nested",
    "unicode_title.zspy": "nested",
    "no_zmetadata.zspy": "nested",
    "stale_zmetadata.zspy": "nested",
}
"""Stores the brief asks for, with their store kind."""

EELS_GROUP = "Experiments/EELS SI - core-loss"


def roundtrip(value: Any) -> Any:
    """Encode, serialise strictly, parse and decode ``value``."""
    text = json.dumps(encode(value), allow_nan=False)
    return decode(json.loads(text))


def without_fileio(signal_dict: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of a signal dict without the time-stamped FileIO records."""
    out = dict(signal_dict)
    metadata = dict(out["metadata"])
    general = dict(metadata["General"])
    general.pop("FileIO", None)
    metadata["General"] = general
    out["metadata"] = metadata
    return out


# ---------------------------------------------------------------------------
# codec: main environment only
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.int8).reshape(2, 3),
        np.array([1.5, np.nan, -np.inf], dtype=">f4"),
        np.arange(4, dtype=">i2"),
        np.array([2**64 - 1, 0], dtype=np.uint64),
        np.array([1 + 2j, complex(np.nan, np.inf)], dtype=np.complex64),
        np.array([True, False]),
        np.array(["ab", "ü"]),
        np.array([b"x", b"yz"]),
        np.zeros((0, 3), dtype=np.float16),
        np.array(3.5),
        np.array([(1, 2, 3)], dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]),
        np.array([(1.0, 2.0, True)], dtype=[("values", "<f8"), ("std", ">f8"), ("is_set", "?")]),
        np.zeros(2, dtype=[("a", "<i4", (2, 3)), ("b", [("c", "<f2"), ("d", "S3")])]),
        np.array(["2024-01-02T03:04:05"], dtype="datetime64[s]"),
    ],
    ids=lambda a: str(a.dtype),
)
def test_ndarray_roundtrip(array: np.ndarray[Any, Any]) -> None:
    decoded = roundtrip(array)
    assert isinstance(decoded, np.ndarray)
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    assert decoded.tobytes() == array.tobytes()
    assert_equal_nested(decoded, array)


def test_nested_roundtrip() -> None:
    ragged = np.empty((2, 1), dtype=object)
    ragged[0, 0] = np.arange(3.0)
    ragged[1, 0] = ["a", ("b", None)]
    value = {
        "none": None,
        "big": 2**70 + 1,
        "neg_big": -(2**65),
        "floats": [0.1, math.nan, math.inf, -math.inf, 5e-324, -0.0],
        "complex": complex(1.5, math.nan),
        "bytes": b"\x00\xff",
        "tuple": (1, (2, "x"), []),
        "empty": ((), [], {}),
        "scalars": [
            np.float32(1.5),
            np.int64(-3),
            np.bool_(True),
            np.str_("s"),
            np.uint64(2**64 - 1),
        ],
        "float16_nan": np.float16(np.nan),
        "void": np.array([(1, 2)], dtype=[("a", "u1"), ("b", ">i2")])[0],
        "datetime64": np.datetime64("2024-01-02", "D"),
        "dates": [
            datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
            datetime.date(2024, 1, 2),
            datetime.time(3, 4, 5),
        ],
        "ragged": ragged,
        "odd_keys": {1: "one", "__tuple__": "not a tag"},
        "tag_key": {"__tuple__": [1, 2]},
        "deep": {"a": {"b": {"c": {"d": [1, {"e": np.arange(2)}]}}}},
    }
    decoded = roundtrip(value)
    assert_equal_nested(decoded, value)
    assert type(decoded["tuple"]) is tuple
    assert decoded["big"] == 2**70 + 1
    assert decoded["scalars"][0].dtype == np.float32
    assert decoded["void"].dtype == value["void"].dtype
    assert decoded["ragged"].dtype == object
    assert isinstance(decoded["ragged"][1, 0][1], tuple)
    assert decoded["tag_key"] == {"__tuple__": [1, 2]}
    assert decoded["odd_keys"][1] == "one"


def test_opaque_objects() -> None:
    class WithDict:
        def _to_dictionary(self) -> dict[str, Any]:
            return {"x": np.arange(2)}

    class Plain:
        def __repr__(self) -> str:
            return "<Plain>"

    decoded = roundtrip([WithDict(), Plain()])
    assert isinstance(decoded[0], ObjectState)
    assert decoded[0].type.endswith("WithDict")
    assert_equal_nested(decoded[0].state, {"x": np.arange(2)})
    assert isinstance(decoded[1], OpaqueObject)
    assert decoded[1].repr == "<Plain>"


@pytest.mark.parametrize(
    ("actual", "expected", "where"),
    [
        ({"a": [1, {"b": 2.0}]}, {"a": [1, {"b": 2.5}]}, "['a'][1]['b']"),
        ({"a": (1,)}, {"a": [1]}, "['a']"),
        ({"a": np.zeros(2, "<f4")}, {"a": np.zeros(2, ">f4")}, "dtype"),
        ({"a": np.zeros(2)}, {"a": np.zeros(3)}, "shape"),
        ({"a": np.array([1.0, np.nan])}, {"a": np.array([1.0, 2.0])}, "first at [1]"),
        ({"a": 1}, {"a": 1.0}, "type int != float"),
        ({"a": True}, {"a": 1}, "type bool != int"),
        ({"a": 1}, {"a": 1, "b": 2}, "missing ['b']"),
        ({"a": np.float32(1)}, {"a": np.float64(1)}, "dtype"),
    ],
)
def test_assert_equal_nested_reports_path(actual: Any, expected: Any, where: str) -> None:
    with pytest.raises(AssertionError, match=r"^at ") as info:
        assert_equal_nested(actual, expected)
    assert where in str(info.value)


def test_assert_equal_nested_nan_and_objects() -> None:
    left = np.empty(2, dtype=object)
    right = np.empty(2, dtype=object)
    left[0], right[0] = np.array([math.nan]), np.array([math.nan])
    left[1], right[1] = "x", "x"
    assert_equal_nested({"v": [math.nan, left]}, {"v": [math.nan, right]})
    right[1] = "y"
    with pytest.raises(AssertionError, match=r"\['v'\]\[1\]\[1\]"):
        assert_equal_nested({"v": [math.nan, left]}, {"v": [math.nan, right]})


# ---------------------------------------------------------------------------
# HyperSpy venv
# ---------------------------------------------------------------------------


@pytest.mark.hyperspy
def test_venv_satisfies_pins(hyperspy_python: Path) -> None:
    assert hyperspy_python.is_file()
    proc = subprocess.run(
        [
            str(hyperspy_python),
            "-c",
            (
                "import hyperspy, rsciio, zarr, numcodecs; "
                "print(hyperspy.__version__, rsciio.__version__, zarr.__version__)"
            ),
        ],
        capture_output=True,
        text=True,
        env=env.subprocess_env(),
        check=True,
    )
    hs_version, rsciio_version, zarr_version = proc.stdout.split()
    assert (hs_version, rsciio_version) == ("2.5.0", "0.15.0")
    assert zarr_version.startswith("2.")
    marker = hyperspy_python.parent.parent / env.MARKER_NAME
    assert marker.read_text().split() == list(env.REQUIREMENTS)


@pytest.mark.hyperspy
def test_env_cli_concurrent(hyperspy_python: Path) -> None:
    """Two concurrent ``env.py`` processes both get the venv (lock, no reinstall)."""
    script = Path(env.__file__)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert Path(out.strip()) == hyperspy_python


def test_ensure_venv_reports_pip_failure(tmp_path: Path) -> None:
    """A failing pip install raises RuntimeError with pip's output (offline)."""
    with pytest.raises(RuntimeError, match=r"(?s)pip install into .*No matching distribution"):
        env.ensure_venv(
            tmp_path / "venv",
            ["intake-zspy-not-a-real-package==0.0.0"],
            pip_args=["--no-index", "--find-links", str(tmp_path)],
        )
    assert not (tmp_path / "venv" / env.MARKER_NAME).exists()


def test_run_in_hyperspy_error_has_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "hyperspy_python", lambda: Path(sys.executable))
    script = tmp_path / "fail.py"
    script.write_text("import sys\nprint('out')\nsys.exit('boom on stderr')\n")
    with pytest.raises(RuntimeError, match=r"(?s)exit 1.*out.*boom on stderr"):
        env.run_in_hyperspy(script)
    ok = tmp_path / "ok.py"
    ok.write_text("import sys\nprint(sys.argv[1:])\n")
    assert env.run_in_hyperspy(ok, "a", 1).stdout.strip() == "['a', '1']"


def test_default_venv_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(env.ENV_VAR, str(tmp_path / "v"))
    assert env.default_venv_dir() == (tmp_path / "v").resolve()
    monkeypatch.delenv(env.ENV_VAR)
    assert env.default_venv_dir() == env.REPO_ROOT / ".cache" / "hyperspy-venv"


# ---------------------------------------------------------------------------
# generated stores and reference dumps
# ---------------------------------------------------------------------------


@pytest.mark.hyperspy
def test_manifest_lists_every_store(hyperspy_fixtures: HyperspyFixtures) -> None:
    outdir, manifest = hyperspy_fixtures
    assert manifest["generator"]["hyperspy"] == "2.5.0"
    kinds = {e["file"]: e["kind"] for e in manifest["stores"]}
    for name, kind in REQUIRED_STORES.items():
        assert kinds.get(name) == kind, name
    for entry in manifest["stores"]:
        path = outdir / entry["file"]
        assert path.exists(), entry["file"]
        assert entry["kind"] in {"nested", "flat", "zip"}
        assert entry["description"]
        assert 0 < entry["bytes"] < 200_000
        assert path.is_file() == (entry["kind"] == "zip")


@pytest.mark.hyperspy
def test_store_layouts(hyperspy_fixtures: HyperspyFixtures) -> None:
    fx = hyperspy_fixtures
    nested = json.loads((fx.path("eels_si.zspy") / EELS_GROUP / "data" / ".zarray").read_text())
    assert nested["dimension_separator"] == "/"
    assert nested["chunks"] == [3, 2, 64]
    assert (fx.path("eels_si.zspy") / EELS_GROUP / "data" / "1" / "2" / "0").is_file()
    flat = json.loads((fx.path("eels_si_flat.zspy") / EELS_GROUP / "data" / ".zarray").read_text())
    assert flat["dimension_separator"] == "."
    assert (fx.path("eels_si_flat.zspy") / EELS_GROUP / "data" / "1.2.0").is_file()
    with zipfile.ZipFile(fx.path("eels_si_zip.zspy")) as zf:
        names = zf.namelist()
    assert f"{EELS_GROUP}/data/0.0.0" in names  # HyperSpy's zip store is flat
    assert len(names) > len(set(names))  # rewritten .zattrs members
    assert not (fx.path("no_zmetadata.zspy") / ".zmetadata").exists()
    stale = fx.path("stale_zmetadata.zspy")
    zattrs = stale / EELS_GROUP / "axis-2" / ".zattrs"
    assert zattrs.stat().st_mtime > (stale / ".zmetadata").stat().st_mtime
    consolidated = json.loads((stale / ".zmetadata").read_text())["metadata"]
    assert consolidated[f"{EELS_GROUP}/axis-2/.zattrs"]["scale"] == 0.5
    assert json.loads(zattrs.read_text())["scale"] == 0.25
    chunks = fx.path("missing_chunks.zspy") / "Experiments" / "missing chunks" / "data"
    assert not (chunks / "0" / "0" / "0").exists()
    assert (chunks / "0" / "1" / "0").exists()


@pytest.mark.hyperspy
def test_eels_si_reference_via_rsciio(
    hyperspy_fixtures: HyperspyFixtures, hyperspy_reference: ReferenceLoader
) -> None:
    ref = hyperspy_reference(hyperspy_fixtures.path("eels_si.zspy"))
    assert isinstance(ref, list)
    assert len(ref) == 1
    sig = ref[0]
    assert set(sig) == {
        "data",
        "axes",
        "metadata",
        "original_metadata",
        "attributes",
        "package",
        "package_version",
        "models",
    }
    assert sig["data"].dtype == np.dtype("<f4")
    assert sig["data"].shape == (6, 5, 64)
    assert sig["package"] == "exspy"
    names = [ax["name"] for ax in sig["axes"]]
    assert names == ["y", "x", "Energy loss"]
    energy = sig["axes"][2]
    assert (energy["scale"], energy["offset"], energy["units"]) == (0.5, 280.0, "eV")
    assert energy["is_binned"] is True
    assert energy["navigate"] is False
    assert sig["metadata"]["General"]["title"] == "EELS SI / core-loss"
    assert sig["metadata"]["Signal"]["signal_type"] == "EELS"
    assert sig["attributes"] == {"_lazy": False, "ragged": False, "learning_results": {}}
    om = sig["original_metadata"]
    assert om["big_int"] == 2**70 + 1
    assert om["none_value"] is None
    assert om["none_string"] is None  # lossy: "_None_" reads back as None
    assert om["bytes_value"] == "raw bytes without NUL"  # lossy: bytes -> str
    assert math.isnan(om["nan_value"])
    assert om["empty_tuple"] == ()
    assert om["int_list"] == [1, 2, 3]
    assert om["number_tuple"] == (1.0, 2.5, 3.0)
    assert om["mixed_list"] == ["1", "two", "3.0"]  # numpy made it a str array
    assert_equal_nested(om["unicode_array"], np.array(["ab", "c", "xyz"]))
    assert om["Level1"]["Level2"]["Level3"]["Level4"]["leaf_str"] == "deep"
    # The reference reader sorts _list_13_ children as strings: 0, 1, 10, 11, 12, 2, ...
    assert om["long_mixed_list"] == [
        0,
        "one",
        ("10", "ten"),
        11,
        "twelve",
        2.0,
        None,
        [4, 4],
        {"five": 5},
        6,
        "seven",
        8.5,
        True,
    ]


@pytest.mark.hyperspy
def test_eels_si_reference_via_hyperspy(
    hyperspy_fixtures: HyperspyFixtures, hyperspy_reference: ReferenceLoader
) -> None:
    (sig,) = hyperspy_reference(hyperspy_fixtures.path("eels_si.zspy"), via="hyperspy")
    assert sig["class"] == "EELSSpectrum"
    assert sig["data"].shape == (6, 5, 64)
    energy = sig["axes"][2]
    assert energy["index_in_array"] == 2
    assert energy["values"].dtype == np.float64
    np.testing.assert_array_equal(energy["values"], 280.0 + 0.5 * np.arange(64))
    fileio = sig["metadata"]["General"]["FileIO"]
    assert [v["operation"] for v in fileio.values()] == ["save"]  # the load record is dropped


@pytest.mark.hyperspy
@pytest.mark.parametrize("name", ["eels_si_zip.zspy", "eels_si_flat.zspy", "no_zmetadata.zspy"])
def test_store_variants_read_the_same(
    hyperspy_fixtures: HyperspyFixtures, hyperspy_reference: ReferenceLoader, name: str
) -> None:
    (base,) = hyperspy_reference(hyperspy_fixtures.path("eels_si.zspy"))
    (other,) = hyperspy_reference(hyperspy_fixtures.path(name))
    assert_equal_nested(without_fileio(other), without_fileio(base))


@pytest.mark.hyperspy
def test_special_stores_reference(
    hyperspy_fixtures: HyperspyFixtures, hyperspy_reference: ReferenceLoader
) -> None:
    fx = hyperspy_fixtures
    (rgb,) = hyperspy_reference(fx.path("dtypes_rgb16.zspy"))
    assert rgb["data"].dtype == np.dtype([("R", "<u2"), ("G", "<u2"), ("B", "<u2")])
    (be,) = hyperspy_reference(fx.path("dtypes_be_int16.zspy"))
    assert be["data"].dtype == np.dtype(">i2")
    assert be["data"].flat[0] == -(2**15)
    (ragged,) = hyperspy_reference(fx.path("ragged_2d.zspy"))
    assert ragged["data"].dtype == object
    assert ragged["attributes"]["ragged"] is True
    assert all(item.ndim == 2 and item.shape[1] == 2 for item in ragged["data"].flat)
    (markers,) = hyperspy_reference(fx.path("markers.zspy"))
    peaks = markers["metadata"]["Markers"]["peaks"]["kwargs"]["offsets"]
    assert peaks.dtype == object
    assert peaks.shape == (3, 2)  # marker arrays use (x, y) navigation order
    assert "_ragged_shapes_offsets" not in markers["metadata"]["Markers"]["peaks"]["kwargs"]
    (model,) = hyperspy_reference(fx.path("model.zspy"))
    comps = model["models"]["a"]["_dict"]["components"]
    assert [c["name"] for c in comps] == ["Gaussian", "Offset"]
    assert comps[0]["parameters"][0]["map"].dtype.names == ("values", "std", "is_set")
    (learn,) = hyperspy_reference(fx.path("learning.zspy"))
    learning = learn["attributes"]["learning_results"]
    assert learning["factors"].shape == (32, 20)
    assert learning["loadings"].shape == (20, 20)
    assert learning["original_shape"] == (4, 5, 32)
    (nested,) = hyperspy_reference(fx.path("nested_signal.zspy"))
    variance = nested["metadata"]["Signal"]["Noise_properties"]["_sig_variance"]
    assert variance["data"].shape == (3, 4, 10)
    multi = hyperspy_reference(fx.path("multi.zspy"))
    assert [s["metadata"]["General"]["title"] for s in multi] == ["first", "second"]
    (stale,) = hyperspy_reference(fx.path("stale_zmetadata.zspy"))
    assert stale["axes"][2]["scale"] == 0.25  # rsciio ignores .zmetadata


@pytest.mark.hyperspy
@pytest.mark.slow
@pytest.mark.parametrize("via", ["rsciio", "hyperspy"])
def test_every_store_dumps(
    hyperspy_fixtures: HyperspyFixtures, hyperspy_reference: ReferenceLoader, via: str
) -> None:
    hyperspy_reference.prefetch(
        [hyperspy_fixtures.path(n) for n in hyperspy_fixtures.names()], via=via
    )
    for name in hyperspy_fixtures.names():
        ref = hyperspy_reference(hyperspy_fixtures.path(name), via=via)
        assert isinstance(ref, list)
        assert ref, name


def test_load_reference_file(tmp_path: Path) -> None:
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(encode([{"a": (1, np.arange(3, dtype=">u2"))}])))
    loaded = load_reference(path)
    assert_equal_nested(loaded, [{"a": (1, np.arange(3, dtype=">u2"))}])
