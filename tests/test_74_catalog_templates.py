"""Strings from stores never run as templates in catalogs.

intake v1 renders an entry's arguments and metadata with jinja2 when the entry is opened
and when a YAML catalog is read. A bucket owner controls titles, signal (group) names and
store key names: rendered, ``{{ cycler.__init__.__globals__.os... }}`` in a title runs code
in the reader's process. The hostile stores below try that, on every catalog path: the
catalogs built in memory, and the YAML they save, reopened with ``intake.open_catalog``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import intake
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from intake.catalog.utils import expand_templates

from intake_zspy.catalog import ZspyExperimentsCatalog, ZspyStoresCatalog
from intake_zspy.catalog._entry import escape_templates
from tests.builders import encode_store, signal_dict, write_dir
from tests.test_72_catalog import place_folder

DATA = np.arange(6, dtype="<i2").reshape(2, 3)
#: A group name that is a jinja2 expression, and a block that does not even parse.
SIGNAL = "{{ 7*7 }} {% if x %}"


def payload(marker: Path) -> str:
    """A title that creates ``marker`` if rendered as a jinja2 template."""
    return (
        f"{{{{ cycler.__init__.__globals__.os.open({str(marker)!r}, 65) }}}}"
        " {{ 6*7 }} {# comment #} line\r\nend\n"
    )


def hostile_store(path: Path, title: str) -> Path:
    return write_dir(encode_store({SIGNAL: signal_dict(DATA, title=title)}), path)


def assert_verbatim(source: Any, title: str, marker: Path) -> None:
    assert source.metadata["title"] == title
    dataset = source.read()
    np.testing.assert_array_equal(dataset["data"].values, DATA)
    assert dataset.attrs["title"] == title
    assert not marker.exists(), "a title from the store ran as code"


@pytest.mark.parametrize("kind", ["directory", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def test_stores_catalog_uses_store_strings_verbatim(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    marker = tmp_path / "pwned"
    title = payload(marker)
    local = tmp_path / "data"
    hostile_store(local / "{{ 6*7 }}.zspy", title)
    url, options = place_folder(kind, local, request)
    cat = ZspyStoresCatalog(url, storage_options=options)
    assert list(cat) == ["{{ 6*7 }}"]
    source = cat["{{ 6*7 }}"]
    assert source.urlpath.endswith("/{{ 6*7 }}.zspy")
    assert source.signal == SIGNAL
    assert list(cat["{{ 6*7 }}"].metadata["signals"]) == [SIGNAL]
    assert source.describe()["metadata"]["title"] == title
    assert_verbatim(source, title, marker)


def test_experiments_catalog_uses_store_strings_verbatim(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    title = payload(marker)
    cat = ZspyExperimentsCatalog(str(hostile_store(tmp_path / "s.zspy", title)))
    assert list(cat) == [SIGNAL]
    assert cat[SIGNAL].describe()["metadata"]["title"] == title
    assert_verbatim(cat[SIGNAL], title, marker)


def test_error_messages_quoting_a_store_are_verbatim(tmp_path: Path) -> None:
    broken = tmp_path / "data" / "{{ 6*7 }} {% x.zspy"
    broken.mkdir(parents=True)
    (broken / ".zgroup").write_text("{{ not json")
    cat = ZspyStoresCatalog(str(tmp_path / "data"))
    entry = cat["{{ 6*7 }} {% x"]
    assert "{{ 6*7 }} {% x.zspy" in entry.metadata["error"]
    assert entry.describe()["description"].startswith("unreadable zspy store")


@pytest.mark.parametrize("which", ["stores", "experiments"])
def test_saved_catalog_reopens_with_the_same_strings(tmp_path: Path, which: str) -> None:
    marker = tmp_path / "pwned"
    title = payload(marker)
    folder = tmp_path / "data"
    store = hostile_store(folder / "{{ 6*7 }}.zspy", title)
    cat = (
        ZspyStoresCatalog(str(folder)) if which == "stores" else ZspyExperimentsCatalog(str(store))
    )
    (name,) = list(cat)
    saved = folder / "catalog.yml"
    cat.save(str(saved))
    reopened = intake.open_catalog(str(saved))
    assert list(reopened) == [name]
    source = reopened[name]
    assert os.path.normpath(source.urlpath) == str(store)
    assert source.signal == SIGNAL
    expected = {k: v for k, v in cat[name].metadata.items() if k != "catalog_dir"}
    assert {k: v for k, v in source.metadata.items() if k != "catalog_dir"} == expected
    assert_verbatim(source, title, marker)
    # intake's describe() of a YAML entry shows the entry as written (escaped)
    assert source.describe()["metadata"]["title"] == escape_templates(title)
    # the folder moves, the catalog still reads (its paths are relative to it)
    moved = tmp_path / "moved"
    os.rename(folder, moved)
    source = intake.open_catalog(str(moved / "catalog.yml"))[name]
    np.testing.assert_array_equal(source.read()["data"].values, DATA)
    assert not marker.exists()


@given(st.text())
def test_escaped_strings_render_back_to_themselves(text: str) -> None:
    escaped = escape_templates({"s": text, "l": [text], "d": {text: text}})
    assert expand_templates(escaped, {}) == {"s": text, "l": [text], "d": {text: text}}


def test_entry_options_are_passed_not_copied(tmp_path: Path) -> None:
    """A storage option may hold an object that cannot be copied; each source still gets
    its own metadata."""
    import threading

    lock = threading.Lock()
    folder = tmp_path / "data"
    hostile_store(folder / "s.zspy", "title")
    cat = ZspyStoresCatalog(str(folder), storage_options={"extra": {"lock": lock}})
    first = cat["s"]
    assert first.storage_options["extra"]["lock"] is lock
    first.metadata["title"] = "changed"
    assert cat["s"](signal=SIGNAL).metadata["title"] == "title"
