"""``import intake_zspy`` and the command line's ``--help``/``--version`` stay light.

Each check runs in a fresh interpreter: the test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import intake_zspy

#: Imported by the data commands, never by ``import intake_zspy`` nor by ``--help``.
HEAVY = ("xarray", "numpy", "pandas", "zarr", "dask", "numcodecs", "fsspec", "matplotlib")


def run_python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter; return its standard output."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_and_help_import_no_heavy_modules() -> None:
    out = run_python(
        f"""
        import contextlib, io, sys
        heavy = {HEAVY!r}

        def loaded():
            return sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))

        import intake_zspy
        print("import", loaded())
        dir(intake_zspy), intake_zspy.ZspyError, intake_zspy.get_limits()
        print("errors and limits", loaded())
        from intake_zspy.cli import main
        for argv in (["--version"], ["--help"], *([c, "--help"] for c in
                     ("info", "check", "convert", "catalog", "browse", "preview"))):
            with contextlib.redirect_stdout(io.StringIO()) as text:
                assert main(argv) == 0, argv
            assert text.getvalue(), argv
            print(" ".join(argv), loaded())
        print("version", intake_zspy.__version__)
        """
    )
    lines = out.splitlines()
    for line in lines[:-1]:
        assert line.endswith(" []"), line  # nothing heavy loaded
    assert len(lines) == 11
    assert lines[-1] == f"version {intake_zspy.__version__}"


def test_public_names_resolve_lazily() -> None:
    assert set(intake_zspy.__all__) <= set(dir(intake_zspy))
    for name in intake_zspy.__all__:
        value = getattr(intake_zspy, name)
        assert value is not None, name
        if callable(value) and not isinstance(value, type):
            assert value.__name__ == name, name  # the function, not a module of that name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        intake_zspy.nope  # noqa: B018
    out = run_python(
        """
        from intake_zspy import *  # noqa: F403
        import intake_zspy
        print(sorted(n for n in intake_zspy.__all__ if n not in globals()))
        """
    )
    assert out.strip() == "[]"


def test_preview_imports_matplotlib_only_to_draw() -> None:
    """``intake_zspy.preview_figure`` resolves without matplotlib; drawing imports it."""
    out = run_python(
        """
        import sys
        import intake_zspy

        preview = intake_zspy.preview_figure
        print(preview.__module__, "matplotlib" in sys.modules)
        """
    )
    assert out.split() == ["intake_zspy.preview", "False"]


ACCESSOR = """
import sys
from pathlib import Path

{first}
import numpy as np

out = Path(sys.argv[1])
ds = xr.Dataset({{"data": (("x",), np.arange(4.0))}})
assert ds.zspy.to_zspy(out / "a.zspy")
assert ds["data"].zspy.to_zspy(out / "b.zspy")
back = xr.open_dataset(out / "a.zspy", engine="zspy")
assert back["data"].values.tolist() == [0.0, 1.0, 2.0, 3.0]
print("ok", type(back.zspy).__name__)
"""


@pytest.mark.parametrize(
    "first",
    [
        "import intake_zspy\nimport xarray as xr",
        "import xarray as xr\nimport intake_zspy",
        "import intake_zspy\nimport importlib\nxr = importlib.import_module('xarray')",
    ],
    ids=["intake_zspy-first", "xarray-first", "import_module"],
)
def test_accessor_in_any_import_order(tmp_path: Path, first: str) -> None:
    out = run_python(ACCESSOR.format(first=first), str(tmp_path))
    assert out.strip() == "ok ZspyAccessor"


def test_accessor_without_importing_intake_zspy(tmp_path: Path) -> None:
    """The engine alone (xarray loads it from the entry point) registers ``.zspy``."""
    path = tmp_path / "a.zspy"
    intake_zspy.to_zspy(_small(), path)
    out = run_python(
        """
        import sys
        import xarray as xr

        assert "intake_zspy" not in sys.modules
        ds = xr.open_dataset(sys.argv[1], engine="zspy")
        print(ds.zspy.to_zspy(sys.argv[1] + ".copy") == sys.argv[1] + ".copy")
        """,
        str(path),
    )
    assert out.strip() == "True"


def test_hook_leaves_once_xarray_is_imported() -> None:
    out = run_python(
        """
        import sys
        import intake_zspy
        from intake_zspy import accessor

        hooks = lambda: [f for f in sys.meta_path if type(f).__module__ == accessor.__name__]
        print(len(hooks()))
        import xarray
        print(len(hooks()), xarray.__spec__.loader is xarray.__loader__,
              type(xarray.__loader__).__module__)
        """
    )
    assert out.split() == ["1", "0", "True", "_frozen_importlib_external"]


def _small() -> object:
    import numpy as np
    import xarray as xr

    return xr.Dataset({"data": (("x",), np.arange(3.0))})
