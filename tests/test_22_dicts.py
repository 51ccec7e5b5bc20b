"""Dictionary decoding (metadata, original_metadata): rules, legacy forms, round trips."""

from __future__ import annotations

import math
import string
from typing import Any

import fsspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from intake_zspy.errors import ZspyFormatError
from intake_zspy.format.dicts import decode_group, encode_dictionary
from intake_zspy.format.hierarchy import ItemEncoder, dumps, load_hierarchy
from intake_zspy.storage import open_store


def roundtrip(d: dict[str, Any]) -> dict[str, Any]:
    enc = ItemEncoder()
    encode_dictionary(enc, "m", d)
    return decode_items(enc.items)


def decode_items(items: dict[str, bytes], path: str = "m") -> dict[str, Any]:
    fs = fsspec.filesystem("memory")
    if fs.exists("/dicts"):
        fs.rm("/dicts", recursive=True)
    fs.pipe({f"/dicts/{k}": v for k, v in items.items()})
    return decode_group(load_hierarchy(open_store("memory://dicts"), consolidated=False), path)


def assert_same(actual: Any, expected: Any, where: str = "") -> None:
    """Exact equality: same types (list vs tuple, int vs float), arrays by dtype too."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), where
        assert actual.shape == expected.shape, where
        if expected.dtype.kind == "O":
            for a, e in zip(actual.ravel(), expected.ravel(), strict=True):
                assert_same(a, e, where)
        else:
            assert actual.dtype == expected.dtype, where
            np.testing.assert_array_equal(actual, expected, err_msg=where)
        return
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected) or set(actual) == set(expected), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), where
    else:
        assert actual == expected, where


def test_every_encoding_rule_round_trips() -> None:
    d = {
        "none": None,
        "text": "électron µm",
        "int": 3,
        "big_int": 2**70,
        "float": 1.5,
        "nan": float("nan"),
        "inf": float("-inf"),
        "bool": True,
        "empty_list": [],
        "empty_tuple": (),
        "ints": [1, 2, 3],
        "floats": (0.5, 1.5),
        "strings": ["a", "bb", "ccc"],
        "mixed": [1, "a", None, 2.5, {"k": "v"}, [1, 2], ()],
        "long_mixed": [*range(11), "x", None],
        "array": np.arange(6, dtype="<i2").reshape(2, 3),
        "text_array": np.array(["ab", "é"]),
        "nested": {"a": {"b": {"c": {"d": 1}}}},
        "ragged": np.array([np.arange(3.0), np.arange(5.0)], dtype=object),
    }
    out = roundtrip(d)
    expected = dict(d)
    expected["text_array"] = np.array(["ab", "é"])
    assert_same(out, expected)


def test_long_mixed_list_keeps_its_true_order() -> None:
    items = [*range(12), "x"]
    out = roundtrip({"seq": items})
    assert out["seq"] == items  # the reference reader would give 0, 1, 10, 11, 12, 2, ...


def test_bytes_without_nul_read_back_as_text() -> None:
    assert roundtrip({"b": b"abc"}) == {"b": "abc"}


def test_bytes_with_nul_are_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode_dictionary(ItemEncoder(), "m", {"b": b"a\x00b"})


def test_non_string_keys_are_refused_with_the_path() -> None:
    with pytest.raises(TypeError, match=r"m/sub.*\(float\)"):
        encode_dictionary(ItemEncoder(), "m", {"sub": {1.5: 1}})


def _doc_items(docs: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    return {k: dumps(v) for k, v in docs.items()}


def test_legacy_datetime_and_bytes_attributes() -> None:
    items = _doc_items(
        {
            "m/.zgroup": {"zarr_format": 2},
            "m/.zattrs": {
                "_datetime_date": "datetime.date(2014, 3, 25)",
                "_datetime_time": "datetime.time(14, 5, 7)",
                "_bs_raw": "abc",
            },
        }
    )
    out = decode_items(items)
    assert out == {"date": "2014-03-25", "time": "14:05:07", "raw": b"abc"}


def test_legacy_datetime_is_parsed_not_evaluated() -> None:
    items = _doc_items(
        {
            "m/.zgroup": {"zarr_format": 2},
            "m/.zattrs": {"_datetime_date": "__import__('os').system('false')"},
        }
    )
    with pytest.raises(ValueError, match="legacy datetime"):
        decode_items(items)


def test_sequence_group_with_a_gap_is_an_error() -> None:
    items = _doc_items(
        {
            "m/.zgroup": {"zarr_format": 2},
            "m/_list_3_seq/.zgroup": {"zarr_format": 2},
            "m/_list_3_seq/.zattrs": {"0": 1, "2": 3},
        }
    )
    with pytest.raises(ZspyFormatError, match=r"0\.\.2"):
        decode_items(items)


def test_nested_signal_and_axes_manager() -> None:
    variance = {
        "data": np.arange(4.0),
        "axes": [
            {
                "_type": "UniformDataAxis",
                "name": "E",
                "units": "eV",
                "navigate": False,
                "is_binned": False,
                "size": 4,
                "scale": 0.5,
                "offset": 1.0,
            }
        ],
        "metadata": {"General": {"title": "variance"}},
        "original_metadata": {},
        "attributes": {},
        "package": "hyperspy",
        "package_version": "2.5.0",
    }
    axes = [{"name": "x", "size": 3}, {"name": "y", "size": 2}]
    out = roundtrip({"Noise": {"_sig_variance": variance}, "_hspy_AxesManager_am": axes})
    nested = out["Noise"]["_sig_variance"]
    np.testing.assert_array_equal(nested["data"], np.arange(4.0))
    assert nested["axes"][0]["scale"] == 0.5
    assert nested["axes"][0]["units"] == "eV"
    assert nested["metadata"] == {"General": {"title": "variance"}}
    assert out["_hspy_AxesManager_am"] == axes


def test_legacy_ragged_shapes_name() -> None:
    enc = ItemEncoder()
    encode_dictionary(
        enc, "m", {"offsets": np.array([np.zeros((2, 2)), np.ones((1, 2))], dtype=object)}
    )
    items = {k.replace("_ragged_shapes_offsets", "ragged_shapes"): v for k, v in enc.items.items()}
    out = decode_items(items)
    assert out["offsets"][0].shape == (2, 2)
    assert out["offsets"][1].shape == (1, 2)


# -- property: whatever the encoder accepts decodes to an equal value ----------------------

_KEY_CHARS = string.ascii_letters + string.digits + " -µé"
keys = st.text(_KEY_CHARS, min_size=1, max_size=8).filter(lambda k: not k.startswith("_"))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10).filter(lambda s: s != "_None_" and "\x00" not in s),
)
homogeneous = st.one_of(
    st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=5),
    st.lists(st.floats(allow_nan=False), min_size=1, max_size=5),
    st.lists(st.text(string.printable, max_size=5), min_size=1, max_size=5),
)
arrays = hnp.arrays(
    dtype=st.sampled_from(["<i4", "<u2", "<f8", ">f4", "|b1", "<c16", "<f2"]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
)
values = st.recursive(
    st.one_of(scalars, homogeneous, homogeneous.map(tuple), arrays),
    lambda children: st.one_of(
        st.dictionaries(keys, children, max_size=4),
        st.lists(children, min_size=2, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=5))
def test_decode_inverts_encode(d: dict[str, Any]) -> None:
    assert_same(roundtrip(d), d)
