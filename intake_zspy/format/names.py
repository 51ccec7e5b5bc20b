"""Names used by the zspy layout (HyperSpy / RosettaSciIO "format version" 3.3).

A zspy store is a zarr format 2 hierarchy::

    .zgroup .zattrs            file_format="ZSpy", file_format_version="3.3"
    .zmetadata                 optional consolidated metadata (every .zgroup/.zattrs/.zarray)
    Experiments/<name>/        one signal; <name> is the title with "/" -> "-", or __unnamed__
        .zattrs                package, package_version
        data                   the array (any dtype; object dtype for ragged signals)
        axis-0 ... axis-<n-1>  one empty group per array dimension, in array order
        metadata/              dictionary-encoded (see below)
        original_metadata/
        attributes/            ragged, _lazy
        learning_results/      decomposition results
    Analysis/models/<name>/    stored models, attr _signal = "/Experiments/<name>"

Dictionaries become groups; items become attributes, arrays or sub-groups. Prefixes mark
Python types that JSON and zarr cannot express directly (``_list_``, ``_tuple_``,
``_list_empty_``, ``_tuple_empty_``, ``_sig_``, ``_hspy_AxesManager_``, ``_bs_``), and the
string ``"_None_"`` stands for ``None``. Ragged (object) arrays use the ``vlen-array`` or
``msgpack2`` object codecs and a companion ``_ragged_shapes_<key>`` array holding each
element's shape.
"""

from __future__ import annotations

import re
from typing import Final

FILE_FORMAT: Final = "ZSpy"
FORMAT_VERSION: Final = "3.3"
#: The root ``file_format`` of HyperSpy's HDF5 twin, ``.hspy`` (same layout, same versions).
HSPY_FILE_FORMAT: Final = "HyperSpy"
ATTR_FILE_FORMAT: Final = "file_format"
ATTR_FORMAT_VERSION: Final = "file_format_version"

# zarr v2 metadata documents
ZGROUP: Final = ".zgroup"
ZATTRS: Final = ".zattrs"
ZARRAY: Final = ".zarray"
ZMETADATA: Final = ".zmetadata"
METADATA_DOCS: Final = (ZGROUP, ZATTRS, ZARRAY)

EXPERIMENTS: Final = "Experiments"
ANALYSIS: Final = "Analysis"
MODELS: Final = f"{ANALYSIS}/models"
UNNAMED: Final = "__unnamed__"
DATA: Final = "data"
AXIS_PREFIX: Final = "axis-"
METADATA: Final = "metadata"
ORIGINAL_METADATA: Final = "original_metadata"
ATTRIBUTES: Final = "attributes"
LEARNING_RESULTS: Final = "learning_results"
PEAK_LEARNING_RESULTS: Final = "peak_learning_results"
MODEL_SIGNAL_ATTR: Final = "_signal"
ATTR_PACKAGE: Final = "package"
ATTR_PACKAGE_VERSION: Final = "package_version"

NONE: Final = "_None_"
LIST_EMPTY: Final = "_list_empty_"
TUPLE_EMPTY: Final = "_tuple_empty_"
LIST: Final = "_list_"
TUPLE: Final = "_tuple_"
SIGNAL: Final = "_sig_"
AXES_MANAGER: Final = "_hspy_AxesManager_"
BYTES: Final = "_bs_"
DATETIME: Final = "_datetime_"
RAGGED_SHAPES: Final = "_ragged_shapes_"
LEGACY_RAGGED_SHAPES: Final = "ragged_shapes"

#: ``_list_<n>_<key>`` / ``_tuple_<n>_<key>`` groups holding a sequence of mixed items.
SEQUENCE_GROUP: Final = re.compile(r"^_(list|tuple)_(\d+)_(.*)$", re.DOTALL)

# axis groups
AXIS_TYPE: Final = "_type"
UNIFORM_AXIS: Final = "UniformDataAxis"
DATA_AXIS: Final = "DataAxis"
FUNCTIONAL_AXIS: Final = "FunctionalDataAxis"
AXIS_VECTOR: Final = "axis"
FUNCTIONAL_X: Final = "x"
