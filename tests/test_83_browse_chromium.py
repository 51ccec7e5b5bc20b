"""The browse page in a real browser: headless Chromium loads ``index.html`` from disk.

Chromium runs as a subprocess (``--screenshot`` and ``--dump-dom``, which prints the DOM
after the page's script ran). The filter reads ``#q=...&type=...`` from the URL, which
lets the test drive it without a DevTools connection; a thumbnail that fails to load is
replaced by the page's script with a "preview did not load" note, which the DOM shows.
Debian's ``chromium`` package provides the browser (``scripts/test.sh`` installs it when
running as root); without it the tests skip.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from intake_zspy.archive import browse_report
from tests.test_82_browse import Page, archive

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian: apt-get install chromium; "
    "scripts/test.sh installs it when run as root)",
)


def chromium(*args: str, home: Path) -> str:
    """Run headless Chromium with ``args``; its standard output."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={home / 'profile'}",
        "--window-size=1400,3000",  # every row in view: lazy images load
        "--virtual-time-budget=5000",
        *args,
    ]
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("chromium")
    browse_report(str(archive(tmp / "data")), str(tmp / "site"))
    return tmp / "site"


def dom(site: Path, home: Path, fragment: str = "") -> Page:
    return Page(chromium("--dump-dom", (site / "index.html").as_uri() + fragment, home=home))


def visible(page: Page) -> list[str]:
    return [r["attrs"]["data-name"] for r in page.rows if "hidden" not in r["attrs"]]


def test_screenshot(site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    chromium(f"--screenshot={shot}", (site / "index.html").as_uri(), home=tmp_path)
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1400, 3000)


def test_script_ran_thumbnails_loaded_and_store_scripts_did_not(site: Path, tmp_path: Path) -> None:
    page = dom(site, tmp_path)
    count = list(page.rows)
    assert len(count) == 7
    assert visible(page) == [r["attrs"]["data-name"] for r in count]
    # every thumbnail is still an <img>: none failed to load (the script replaces those)
    assert sum(len(r["imgs"]) for r in page.rows) == 5
    assert all(
        "preview did not load" not in "".join("".join(c) for c in r["cells"]) for r in page.rows
    )
    # the hostile store's markup stayed text; its script never ran
    body = next(a for t, a in page.elements if t == "body")
    assert "data-pwned" not in body
    assert len(page.scripts) == 1
    evil = page.row("hostile")
    assert Page.text(evil, 2).startswith("<script>document.body.setAttribute")


def test_filter_box_and_signal_type_hide_rows(site: Path, tmp_path: Path) -> None:
    assert visible(dom(site, tmp_path, "#q=drift")) == ["images/drift"]
    assert visible(dom(site, tmp_path, "#type=EDS_TEM")) == ["both", "sub/eds"]
    assert visible(dom(site, tmp_path, "#q=unreadable")) == ["broken", "corrupt"]
    assert visible(dom(site, tmp_path, "#q=eels&type=EELS")) == ["both", "si"]


def test_a_missing_thumbnail_is_noticed(site: Path, tmp_path: Path) -> None:
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    victim = next((broken / "thumbs").iterdir())
    victim.unlink()
    page = dom(broken, tmp_path)
    notes = [r for r in page.rows if "preview did not load" in Page.text(r, 0)]
    assert len(notes) == 1
    assert sum(len(r["imgs"]) for r in page.rows) == 4
