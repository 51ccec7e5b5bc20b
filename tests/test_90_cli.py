"""The ``intake-zspy`` command line, run as a real program: info, check, convert, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr

import intake_zspy
from intake_zspy.cli import main
from tests.builders import CHUNKS, EELS, SHAPE, build_store
from tests.conftest import zip_directory
from tests.s3server import upload

SCRIPT = Path(sys.executable).with_name("intake-zspy")


def command() -> list[str]:
    """The installed console script, else ``python -m intake_zspy``."""
    return [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "intake_zspy"]


@dataclass
class Run:
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env.update(NO_PROXY="*", COLUMNS="100", **(extra or {}))
    return env


def cli(*args: Any, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run the command line in a subprocess (bounded in time)."""
    done = subprocess.run(
        [*command(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(env),
        cwd=cwd,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


def cli_many(*calls: list[Any], module: bool = False) -> list[Run]:
    """Run several command lines concurrently (each one a separate process)."""
    program = [sys.executable, "-m", "intake_zspy"] if module else command()
    procs = [
        subprocess.Popen(
            [*program, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(None),
        )
        for args in calls
    ]
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        runs.append(Run(proc.returncode, out, err))
    return runs


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return build_store(tmp_path / "si.zspy")


def assert_same_signal(actual: xr.Dataset, expected: xr.Dataset) -> None:
    xr.testing.assert_identical(actual.drop_attrs(deep=False), expected.drop_attrs(deep=False))
    for key in ("title", "signal_type", "metadata", "original_metadata"):
        assert repr(actual.attrs[key]) == repr(expected.attrs[key]), key


# -- the program ----------------------------------------------------------------------


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    (script,) = cli_many(["--help"])
    (module,) = cli_many(["--version"], module=True)
    assert script.rc == module.rc == 0
    for name in ("info", "check", "convert", "catalog", "preview", "examples:", "exit status"):
        assert name in script.out
    assert module.out.strip() == f"intake-zspy {intake_zspy.__version__}"
    for name in ("info", "check", "convert", "catalog", "preview"):
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        assert "examples:" in text, name
        assert "--storage-options" in text, name
    assert main([]) == 2  # no command: help on stderr, status 2


def test_errors_are_one_line(tmp_path: Path, store: Path) -> None:
    existing = tmp_path / "exists.zspy"
    existing.mkdir()
    runs = cli_many(
        ["info", tmp_path / "missing.zspy", "--storage-options", "{not json"],
        ["convert", store, existing],
    )
    expected = [
        "intake-zspy info: error: --storage-options: not valid JSON",
        f"intake-zspy convert: error: {existing}: already exists; pass --overwrite to replace it",
    ]
    for run, message in zip(runs, expected, strict=True):
        assert run.rc == 2, run
        assert run.out == ""
        assert run.err.startswith(message), run.err
        assert run.err.count("\n") == 1, run.err
    assert list(existing.iterdir()) == []  # untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "{store}", "--storage-options", "[1, 2]"], "expected a JSON object, got list"),
        (["info", "{plain}"], "not a zspy store: no .zgroup at its root"),
        (["info", "{tmp}/missing.zspy"], "missing.zspy: no such file or directory"),
        (["info", "{store}", "--signal", "nope"], "no signal named 'nope'; available: EELS SI"),
        (["convert", "{store}", "{out}", "--chunks", "y=0"], "must be at least 1"),
        (["convert", "{store}", "{out}", "--chunks", "y=4,8"], "either DIM=N,... or N,N,..."),
        (["convert", "{store}", "{out}", "--chunks", "1,2"], "gives 2 sizes, but a signal has 3"),
        (["convert", "{store}", "{out}", "--chunks", "auto-signal:lots"], "is not a size"),
        (["convert", "{store}", "{out}", "--chunks", "nope=4"], "names dims ['nope'] that no"),
        (["convert", "{store}", "{out}", "--compressor", "blosc:zstd:12"], "levels are 0 to 9"),
        (["convert", "{store}", "{out}", "--compressor", "brotli"], "unknown; use blosc"),
        (["preview", "{store}", "-o", "{out}", "--size", "tiny"], "write WIDTHxHEIGHT"),
        (["catalog", "{tmp}/nothing", "-o", "{out}"], "nothing found there"),
    ],
)
def test_bad_input_messages(
    args: list[str], message: str, tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    where = {
        "store": store,
        "plain": tmp_path / "plain",
        "out": tmp_path / "o.zspy",
        "tmp": tmp_path,
    }
    assert main([a.format(**where) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"intake-zspy {args[0]}: error: " in err
    assert message in err
    assert not (tmp_path / "o.zspy").exists()


# -- info -----------------------------------------------------------------------------


def test_info(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zipped = zip_directory(store, tmp_path / "si.zip")
    as_json, meta = cli_many(
        ["info", store, "--json"],
        ["info", zipped, "--signal", EELS, "--metadata", "--original-metadata"],
    )
    assert main(["info", str(store)]) == 0
    text = Run(0, capsys.readouterr().out, "")
    assert main(["info", str(zipped), "--signal", "ragged", "--json", "--metadata"]) == 0
    one = Run(0, capsys.readouterr().out, "")
    doc = as_json.json()
    assert doc["store_kind"] == "directory"
    assert doc["stored_bytes"] == sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    eels, ragged = doc["signals"]
    assert [eels[k] for k in ("name", "title", "signal_type")] == [
        EELS,
        "EELS SI / core-loss",
        "EELS",
    ]
    assert [eels[k] for k in ("shape", "dtype", "chunks")] == [list(SHAPE), "float32", list(CHUNKS)]
    assert [eels[k] for k in ("chunk_count", "stored_chunks", "nbytes")] == [6, 6, 6 * 8 * 32 * 4]
    assert [eels["navigation_dims"], eels["signal_dims"]] == [["y", "x"], ["Energy loss"]]
    assert eels["hyperspy"] == "(8, 6|32)"
    y, x, energy = eels["dims"]
    assert [y[k] for k in ("units", "first", "last", "scale")] == ["nm", 0.0, 2.5, 0.5]
    assert [x[k] for k in ("axis_type", "first", "last", "scale")] == ["DataAxis", 0.0, 5.0, None]
    assert [energy[k] for k in ("units", "first", "last", "navigate")] == [
        "eV",
        280.0,
        295.5,
        False,
    ]
    assert energy["is_binned"] is True
    assert [eels["compressor"][k] for k in ("id", "cname", "clevel")] == ["blosc", "zstd", 1]
    chunk_files = (store / "Experiments" / EELS / "data").rglob("[0-9]")
    assert eels["stored_bytes"] == sum(p.stat().st_size for p in chunk_files if p.is_file())
    assert [ragged[k] for k in ("ragged", "dtype", "signal_dims")] == [True, "object", []]
    assert "metadata" not in eels

    lines = text.out.splitlines()
    assert lines[0] == str(store)
    row = next(line for line in lines if line.strip().startswith("Energy loss"))
    assert row.split()[2:] == ["32", "eV", "280", "..", "295.5", "0.5", "signal"]
    header = next(line for line in lines if line.strip().startswith("dim "))
    assert header.index("units") == row.index("eV")  # aligned columns
    x_row = next(line for line in lines if line.strip().startswith("x "))
    assert x_row.split()[-2:] == ["non-uniform", "navigation"]
    for part in ("blosc zstd level 1, shuffle", "(8, 6|32)", "EELS SI / core-loss"):
        assert part in text.out

    assert meta.out.splitlines()[1].split()[:2] == ["store", "zip,"]
    for part in ("│       ├── beam_energy = 200.0", "tilts = array([0.0, 1.5], dtype=float64)"):
        assert part in meta.out
    assert "hot_pixels = <array object (3,)>" in meta.out  # original_metadata
    (sig,) = one.json()["signals"]
    assert sig["metadata"]["General"]["title"] == "ragged"


# -- check ----------------------------------------------------------------------------


def test_check_directory_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sound = build_store(tmp_path / "sound.zspy")
    missing = build_store(tmp_path / "missing.zspy")
    (missing / "Experiments" / EELS / "data" / "1" / "0" / "0").rename(
        missing / "Experiments" / EELS / "data" / "1" / "0.0"  # a flat key: outside the grid
    )
    bad = build_store(tmp_path / "bad.zspy")
    data = bad / "Experiments" / EELS / "data"
    (data / "0" / "1" / "0").write_bytes((data / "0" / "1" / "0").read_bytes()[:40])
    (data / "2" / "0" / "0").write_bytes((data / "2" / "0" / "0").read_bytes()[:16] + bytes(600))
    (bad / "Experiments" / "ragged" / "data" / "0" / "0").write_bytes(b"not blosc")
    (bad / "Experiments" / EELS / "metadata" / "General" / ".zattrs").write_text('{"title": ')
    ok, damaged = cli_many(
        ["check", sound, "--json"], ["check", bad, "--workers", "2", "--batch", "3"]
    )
    warned = Run(main(["check", str(missing)]), *capsys.readouterr())
    strict = Run(main(["check", str(missing), "--strict", "--json"]), *capsys.readouterr())
    doc = ok.json()
    assert [ok.rc, doc["ok"], doc["problems"], doc["warnings"]] == [0, True, [], []]
    arrays = {a["path"]: a for a in doc["arrays"]}
    signal = f"Experiments/{EELS}"
    for path in (
        f"{signal}/data",
        f"{signal}/axis-1/axis",
        f"{signal}/metadata/Acquisition_instrument/TEM/tilts",
        f"{signal}/original_metadata/Detector/hot_pixels",
        f"{signal}/original_metadata/Detector/_ragged_shapes_hot_pixels",
        "Experiments/ragged/data",
        "Experiments/ragged/_ragged_shapes_data",
    ):
        assert arrays[path]["stored_chunks"] == arrays[path]["expected_chunks"], path
    assert arrays[f"{signal}/data"]["expected_chunks"] == 6
    assert doc["chunks_read"] == sum(a["stored_chunks"] for a in doc["arrays"])

    assert warned.rc == 0
    assert f"{signal}/data: 1 of 6 chunks missing (read as fill value 0.0): 1/0/0" in warned.err
    assert (
        f"{signal}/data: 1 key(s) outside the chunk grid (shape (6, 8, 32), chunks (2, 4, 32)): 1/0.0"
        in warned.err
    )
    assert "OK with 2 warnings" in warned.out
    assert strict.rc == 1
    (array,) = [a for a in strict.json()["arrays"] if a["path"] == f"{signal}/data"]
    assert array["missing_keys"] == [f"{signal}/data/1/0/0"]

    assert damaged.rc == 1
    problems = damaged.err.splitlines()
    for key in (f"{EELS}/data/0/1/0", f"{EELS}/data/2/0/0", "ragged/data/0/0"):
        assert any(f"check: corrupted chunk Experiments/{key}: " in p for p in problems), key
    assert any("blosc header announces" in p for p in problems)
    assert any(
        f"invalid metadata document {signal}/metadata/General/.zattrs" in p for p in problems
    )
    assert "DAMAGED: 4 problems" in damaged.out


def test_check_zip_stores(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = zip_directory(store, tmp_path / "si.zip").read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(raw[: len(raw) // 2])
    member = f"Experiments/{EELS}/data/1/1/0"
    with zipfile.ZipFile(tmp_path / "si.zip") as zf:
        info = zf.getinfo(member)
    start = info.header_offset + 30 + len(member.encode()) + len(info.extra) + 20
    crc = tmp_path / "crc.zip"
    crc.write_bytes(raw[:start] + bytes(8) + raw[start + 8 :])
    (bad,) = cli_many(["check", crc, "--json"])
    cut = Run(main(["check", str(truncated)]), *capsys.readouterr())
    assert cut.rc == 1
    assert "damaged or truncated zip file" in cut.err
    assert bad.rc == 1
    assert f"corrupted chunk {member}: cannot be read: DamagedStoreError" in bad.err
    assert "Bad CRC-32" in bad.err
    assert bad.json()["corrupted_chunks"] == 1


def test_check_and_info_on_s3(
    store: Path, s3_bucket: str, s3_storage_options: dict[str, Any]
) -> None:
    """Loopback S3: fsspec's environment configuration, a chunk corrupted after upload."""
    url = f"s3://{s3_bucket}/si.zspy"
    upload(store, url, s3_storage_options)
    options = json.dumps(s3_storage_options)
    env = {
        "FSSPEC_S3_ENDPOINT_URL": s3_storage_options["endpoint_url"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    assert main(["check", url, "--storage-options", options]) == 0
    info = cli("info", url, "--json", env=env)  # endpoint from fsspec's configuration
    assert info.json()["store_kind"] == "s3 prefix"
    assert info.json()["signals"][0]["shape"] == list(SHAPE)
    fs = fsspec.filesystem("s3", **s3_storage_options)
    fs.pipe_file(f"{url}/Experiments/{EELS}/data/2/1/0", b"\x02\x01" + bytes(30))
    run = cli("check", url, "--storage-options", options)
    assert run.rc == 1
    assert f"corrupted chunk Experiments/{EELS}/data/2/1/0: " in run.err


# -- convert --------------------------------------------------------------------------


def test_convert_directory_to_zip_rechunked(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.zip"
    run = cli("convert", store, target, "--chunks", "y=6,x=1", "--compressor", "zstd:3")
    assert run.rc == 0, run.err
    assert run.out.startswith(f"wrote {target}: 2 signals")
    # written all the same, with one warning that hs.load will not open a .zip name
    assert run.err.count(f"warning: {target}: HyperSpy's hs.load recognises") == 1, run.err
    with zipfile.ZipFile(target) as zf:
        zarray = json.loads(zf.read(f"Experiments/{EELS}/data/.zarray"))
    assert zarray["chunks"] == [6, 1, 32]
    assert zarray["compressor"] == {"id": "zstd", "level": 3, "checksum": False}
    assert_same_signal(intake_zspy.open_dataset(target).load(), intake_zspy.open_dataset(store))
    before = intake_zspy.open_dataset(store, signal="ragged")["data"].values
    after = intake_zspy.open_dataset(target, signal="ragged")["data"].values
    for a, b in zip(after.flat, before.flat, strict=True):
        np.testing.assert_array_equal(a, b)
    assert main(["check", str(target)]) == 0
    assert "OK: every chunk decodes" in capsys.readouterr().out


def test_convert_auto_signal_dry_run_and_overwrite(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "auto.zspy"
    assert (
        main(["convert", str(store), str(target), "--chunks", "auto-signal:1kB", "--dry-run"]) == 0
    )
    assert not target.exists()
    # a spectrum is 128 B: 7 fit in 1 kB; nav (6, 8) halved, largest first: (3, 4), (3, 2)
    dry = capsys.readouterr().out
    assert f"{EELS}: chunks (2, 4, 32) -> (3, 2, 32)" in dry
    assert "ragged: ragged, written whole" in dry
    assert cli("convert", store, target, "--chunks", "auto-signal:1kB").rc == 0
    zarray = json.loads((target / "Experiments" / EELS / "data" / ".zarray").read_text())
    assert zarray["chunks"] == [3, 2, 32]
    assert main(["convert", str(store), str(target), "--chunks", "y=-1,x=all", "--overwrite"]) == 0
    zarray = json.loads((target / "Experiments" / EELS / "data" / ".zarray").read_text())
    assert zarray["chunks"] == [6, 8, 32]
    assert zarray["compressor"]["cname"] == "zstd"  # the source's compressor is kept
    assert (target / ".zmetadata").exists()
    assert_same_signal(intake_zspy.open_dataset(target).load(), intake_zspy.open_dataset(store))


def test_convert_through_s3(
    store: Path,
    tmp_path: Path,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = json.dumps(s3_storage_options)
    remote = f"s3://{s3_bucket}/runs/si.zspy"
    assert (
        main(["convert", str(store), remote, "--storage-options", options, "--chunks", "x=8"]) == 0
    )
    back = tmp_path / "back.zip"
    down = cli("convert", remote, back, "--storage-options", options, "--compressor", "none")
    assert down.rc == 0, down.err
    with zipfile.ZipFile(back) as zf:
        zarray = json.loads(zf.read(f"Experiments/{EELS}/data/.zarray"))
    assert zarray["chunks"] == [2, 8, 32]
    assert zarray["compressor"] is None
    assert_same_signal(intake_zspy.open_dataset(back).load(), intake_zspy.open_dataset(store))
    assert main(["convert", str(store), remote, "--storage-options", options]) == 2
    assert f"{remote}: already exists" in capsys.readouterr().err


def test_convert_streams_with_bounded_memory(tmp_path: Path) -> None:
    import dask.array as da

    big = tmp_path / "big.zspy"  # 256 MiB of float64 in chunks of 512 kiB
    data = da.arange(64 * 256 * 2048, dtype="<f8", chunks=32 * 2048).reshape(64, 256, 2048)
    intake_zspy.to_zspy(xr.DataArray(data, dims=("y", "x", "E"), name="big"), big)
    code = (
        "import resource, sys, dask.array, xarray, numcodecs, intake_zspy.cli.convert; "
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "from intake_zspy.cli import main; rc = main(sys.argv[1:]); "
        "print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
    )
    args = ["convert", big, tmp_path / "out.zspy", "--chunks", "auto-signal:4MB", "--workers", "2"]
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    base, peak = (int(n) for n in done.stdout.splitlines()[-1].split())
    assert (peak - base) / 1024 < 128, (base, peak)  # kiB; far less than the data
    zarray = json.loads((tmp_path / "out.zspy/Experiments/big/data/.zarray").read_text())
    assert zarray["chunks"] == [16, 8, 2048]  # 16 kiB spectra, 128 (< 4 MB / 16 kiB) per chunk
    reread = intake_zspy.open_dataset(tmp_path / "out.zspy")["data"]
    np.testing.assert_array_equal(
        reread[-1, -1, -3:].values, [64 * 256 * 2048 - n for n in (3, 2, 1)]
    )


@pytest.mark.hyperspy
def test_convert_outputs_load_in_hyperspy(
    store: Path, tmp_path: Path, hyperspy_reference: Any
) -> None:
    from tests.hyperspy.reference import assert_equal_nested

    targets = {
        "zip.zspy": ["--store-type", "zip", "--chunks", "y=3,x=3", "--compressor", "blosc:lz4:5"],
        "auto.zspy": ["--chunks", "auto-signal:1kB", "--compressor", "zlib:6"],
    }
    runs = cli_many(*[["convert", store, tmp_path / name, *opts] for name, opts in targets.items()])
    assert [r.rc for r in runs] == [0, 0], [r.err for r in runs]
    assert zipfile.is_zipfile(tmp_path / "zip.zspy")
    hyperspy_reference.prefetch([store, *(tmp_path / name for name in targets)], via="hyperspy")
    expected = hyperspy_reference(store, via="hyperspy")
    assert [s["class"] for s in expected] == ["EELSSpectrum", "BaseSignal"]
    assert expected[0]["data"].shape == SHAPE
    for name in targets:
        assert_equal_nested(hyperspy_reference(tmp_path / name, via="hyperspy"), expected, name)
