"""HyperSpy's HDF5 container (``.hspy``) under the same decoder as zspy.

``.hspy`` and ``.zspy`` share one layout (``Experiments/<name>/data``, ``axis-<i>``
groups, dictionaries encoded as groups, attributes and arrays with the ``_list_``,
``_tuple_``, ``_sig_``, ``_ragged_shapes_`` ... conventions); only the container
differs. :class:`H5Hierarchy` is a :class:`~intake_zspy.format.hierarchy.Hierarchy` made
from one walk of an HDF5 file: every group becomes a ``.zgroup`` (and ``.zattrs``)
document, every dataset a ``.zarray`` document describing its shape, dtype and chunks,
so :class:`~intake_zspy.format.decode.ZspyFile`, the dictionary decoder, the axes and
the xarray mapping run unchanged on top. Arrays are :class:`H5Array` s: lazy handles
that read hyperslabs through h5py.

What HDF5 stores differently, as HyperSpy 2 / RosettaSciIO 0.15 write it (learnt from
files they wrote), is mapped onto what zarr's JSON attributes give:

- attributes are numpy scalars (``np.float64``, ``np.bool_``, ...) -> Python scalars;
  byte strings -> text; attribute arrays -> lists; an empty attribute -> ``None``;
- lists of strings (``_list_<key>``) are variable-length string datasets -> object
  arrays of ``str`` (zarr's ``vlen-utf8``);
- ragged arrays (data, markers) are variable-length datasets: object arrays of 1-D
  arrays, shaped by ``_ragged_shapes_<key>`` as in zspy;
- contiguous (unchunked) datasets get chunks of about
  :data:`~intake_zspy.format.layout.TARGET_CHUNK_BYTES` for lazy reads.

Nothing is evaluated or unpickled: opaque binary data, object references and other
HDF5 types without a HyperSpy meaning are refused with a :class:`ZspyFormatError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from intake_zspy.errors import (
    ChunkDecodeError,
    DamagedStoreError,
    LimitExceededError,
    UnsupportedVersionError,
    ZspyFormatError,
)
from intake_zspy.format import names
from intake_zspy.format.arrays import V2Array
from intake_zspy.format.h5chunks import ChunkIndex
from intake_zspy.format.hierarchy import Hierarchy, check_opening_reads
from intake_zspy.format.layout import TARGET_CHUNK_BYTES, default_chunks
from intake_zspy.format.limits import get_limits
from intake_zspy.format.zarray import ArrayMeta

if TYPE_CHECKING:
    from intake_zspy.storage import HDF5File

__all__ = [
    "MIN_HSPY_VERSION",
    "H5Array",
    "H5Hierarchy",
    "load_h5_hierarchy",
    "require_h5py",
]

#: The oldest ``.hspy`` format version read: older files name their metadata group
#: ``mapped_parameters`` and lack the current axis attributes.
MIN_HSPY_VERSION = "2.0"


def require_h5py() -> Any:
    """Import h5py, or say which extra provides it.

    Raises
    ------
    ImportError
        h5py is not installed.
    """
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            "reading HyperSpy .hspy (HDF5) files needs h5py: pip install 'intake-zspy[hspy]'"
        ) from exc
    return h5py


def _text(value: bytes, where: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _attr_value(value: Any, where: str) -> Any:
    """An HDF5 attribute as the JSON attribute zspy stores for the same value."""
    h5py = require_h5py()
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, bytes):
        return _text(value, where)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer | np.floating):  # np.float64 is a float: first
        return value.item()
    if isinstance(value, np.complexfloating):
        return complex(value)
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "V" or h5py.check_ref_dtype(value.dtype) is not None:
            _refuse(value.dtype, where)
        if value.ndim == 0:
            return _attr_value(value[()], where)
        return [_attr_value(v, where) for v in value.tolist()]
    if isinstance(value, np.void):
        _refuse(value.dtype, where)
    raise ZspyFormatError(f"{where}: an attribute of type {type(value).__name__} has no meaning")


def _refuse(dtype: np.dtype[Any], where: str) -> None:
    raise ZspyFormatError(
        f"{where}: holds {dtype} (opaque bytes or HDF5 references, possibly pickled Python "
        "objects), which HyperSpy files do not contain; intake-zspy never unpickles"
    )


def _storage_dtype(dataset: Any, where: str) -> tuple[np.dtype[Any], list[dict[str, Any]]]:
    """The numpy dtype an array reads as, and the object codec zspy would name for it."""
    h5py = require_h5py()
    dtype = dataset.dtype
    if h5py.check_string_dtype(dtype) is not None and dtype.kind == "O":
        return np.dtype(object), [{"id": "vlen-utf8"}]
    base = h5py.check_vlen_dtype(dtype)
    if base is not None and h5py.check_string_dtype(base) is not None:
        return np.dtype(object), [{"id": "msgpack2"}]  # ragged text: lists of str per item
    if base is not None:
        return np.dtype(object), [{"id": "vlen-array", "dtype": np.dtype(base).str}]
    if h5py.check_ref_dtype(dtype) is not None or dtype.kind == "O":
        _refuse(dtype, where)
    if dtype.kind == "V" and dtype.fields is None:
        _refuse(dtype, where)
    return dtype, []


def _chunks(dataset: Any, dtype: np.dtype[Any]) -> tuple[int, ...]:
    """The HDF5 chunks, or chunks of about the target size for a contiguous dataset."""
    shape = tuple(int(n) for n in dataset.shape)
    if dataset.chunks is not None:
        return tuple(int(c) for c in dataset.chunks)
    navigate = [True] * (len(shape) - 1) + [False] if len(shape) > 1 else [True] * len(shape)
    return default_chunks(shape, max(dtype.itemsize, 1), navigate, TARGET_CHUNK_BYTES)


def _zarray(dataset: Any, where: str) -> dict[str, Any]:
    """A ``.zarray`` document describing an HDF5 dataset (read through h5py, not zarr)."""
    dtype, filters = _storage_dtype(dataset, where)
    descr: Any = [list(f) for f in dtype.descr] if dtype.fields is not None else dtype.str
    return {
        "zarr_format": 2,
        "shape": [int(n) for n in dataset.shape],
        "chunks": [max(1, c) for c in _chunks(dataset, dtype)],
        "dtype": descr,
        "compressor": None,
        "filters": filters or None,
        "fill_value": None,
        "order": "C",
        "dimension_separator": "/",
    }


def _documents(h5: Any, url: str) -> dict[str, dict[str, Any]]:
    """The zarr documents of every group and dataset of an open h5py ``File``."""
    h5py = require_h5py()
    docs: dict[str, dict[str, Any]] = {names.ZGROUP: {"zarr_format": 2}}
    limit = get_limits().max_depth

    def attrs_of(obj: Any, path: str) -> dict[str, Any]:
        where = f"{url}: {path or '/'}"
        return {str(k): _attr_value(v, f"{where} attribute {k!r}") for k, v in obj.attrs.items()}

    def visit(path: str, obj: Any) -> None:
        if path.count("/") > limit:
            raise LimitExceededError(f"{url}: {path!r} lies deeper than the limit of {limit}")
        prefix = f"{path}/"
        if isinstance(obj, h5py.Dataset):
            docs[f"{prefix}{names.ZARRAY}"] = _zarray(obj, f"{url}: dataset {path!r}")
        elif isinstance(obj, h5py.Group):
            docs[f"{prefix}{names.ZGROUP}"] = {"zarr_format": 2}
        else:  # pragma: no cover - visititems only yields groups and datasets
            return
        attrs = attrs_of(obj, path)
        if attrs:
            docs[f"{prefix}{names.ZATTRS}"] = attrs

    root = attrs_of(h5, "")
    if root:
        docs[names.ZATTRS] = root
    h5.visititems(visit)
    return docs


def _texts(items: np.ndarray) -> np.ndarray:
    """Ragged text (each item an array of byte strings) as lists of ``str``, as zspy's
    ``msgpack2`` items read."""
    out = np.empty(items.shape, dtype=object)
    for index, item in np.ndenumerate(items):
        out[index] = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in item]
    return out


def _opened(container: HDF5File) -> Any:
    """The container's h5py ``File``, opened again after unpickling (call under its lock)."""
    if container.handle is None:
        h5py = require_h5py()
        try:
            container.handle = h5py.File(container.local_path or container.file_object(), "r")
        except (OSError, ValueError) as exc:
            raise DamagedStoreError(
                f"{container.url}: damaged or truncated HDF5 file: {exc}"
            ) from exc
    return container.handle


class H5Array(V2Array):
    """A lazily read HDF5 dataset: :meth:`read` reads one hyperslab through h5py."""

    __slots__ = ()

    @property
    def container(self) -> HDF5File:
        return self.store  # type: ignore[return-value]

    def read(self, selection: tuple[slice, ...] | None = None) -> np.ndarray:
        """Read a box of the dataset (one ``slice`` per dimension; ``None``: all)."""
        shape = self.meta.shape
        if selection is None:
            selection = tuple(slice(None) for _ in shape)
        picks = [range(*s.indices(n)) for s, n in zip(selection, shape, strict=True)]
        if not all(picks):
            return self.empty(tuple(len(r) for r in picks))
        # HDF5 selects with positive steps only: reverse afterwards where asked
        forward = tuple(
            slice(r.start, r.stop, r.step) if r.step > 0 else slice(r[-1], r[0] + 1, -r.step)
            for r in picks
        )
        out = self._read(forward)
        backward = tuple(slice(None, None, -1) if r.step < 0 else slice(None) for r in picks)
        return out[backward] if any(r.step < 0 for r in picks) else out

    def stored(self) -> tuple[int, int, dict[str, Any] | None]:
        """Stored chunks, stored bytes and the HDF5 compression (``{"id", "level"}`` in
        numcodecs' terms, ``None`` for none), as the file says them."""
        container = self.container
        with container.lock:
            dataset = _opened(container)[self.path]
            count = dataset.id.get_num_chunks() if dataset.chunks is not None else 1
            compressor = None
            if dataset.compression is not None:
                compressor = {"id": dataset.compression, "level": dataset.compression_opts}
                if dataset.shuffle:
                    compressor["shuffle"] = True
            return int(count), int(dataset.id.get_storage_size()), compressor

    def _index(self) -> ChunkIndex | None:
        """The dataset's chunk index when the direct path can read it (built once)."""
        container = self.container
        with container.lock:
            if self.path not in container.cache:
                try:
                    index = ChunkIndex.of(_opened(container)[self.path])
                except (OSError, RuntimeError, ValueError, KeyError):
                    index = None  # HDF5 reads it, and reports what is wrong
                container.cache[self.path] = index
            return container.cache[self.path]  # type: ignore[no-any-return]

    def _read(self, selection: tuple[slice, ...]) -> np.ndarray:
        container = self.container
        index = self._index() if selection else None
        if index is not None:
            box = tuple(slice(s.start, max(s.start + 1, s.stop)) for s in selection)
            try:
                out = index.read(container, box)
            except (OSError, ValueError, zlib.error) as exc:
                raise ChunkDecodeError(
                    f"{container.url}: dataset {self.path!r} cannot be read (damaged or "
                    f"truncated file?): {exc}"
                ) from exc
            steps = tuple(slice(None, None, s.step) for s in selection)
            return out[steps] if any(s.step != 1 for s in selection) else out
        with container.lock:
            try:
                dataset = _opened(container)[self.path]
                if self.meta.is_object and self.meta.filters[0]["id"] == "vlen-utf8":
                    dataset = dataset.asstr()
                out = dataset[selection] if selection else dataset[()]
                if self.meta.is_object and self.meta.filters[0]["id"] == "msgpack2":
                    out = _texts(out)
            except (OSError, RuntimeError, ValueError) as exc:
                raise ChunkDecodeError(
                    f"{container.url}: dataset {self.path!r} cannot be read (damaged or "
                    f"truncated file?): {exc}"
                ) from exc
        return np.asarray(out, dtype=self.meta.dtype)


class H5Hierarchy(Hierarchy):
    """The groups, attributes and datasets of a HyperSpy ``.hspy`` file.

    Built by :func:`load_h5_hierarchy`; arrays are :class:`H5Array` s.
    """

    file_format: ClassVar[str] = names.HSPY_FILE_FORMAT
    container_name: ClassVar[str] = "HyperSpy .hspy file"

    def verify(self, paths: Iterable[str]) -> None:
        """Nothing to check: the documents come from the file itself."""

    def _handle(self, path: str) -> H5Array:
        key = f"{path}/{names.ZARRAY}"
        if key not in self.docs:
            raise ZspyFormatError(f"{self.store.url}: no dataset at {path!r}")
        where = f"{self.store.url}: dataset {path!r}"
        return H5Array(self.store, path, ArrayMeta.from_json(self.docs[key], where))

    def array(self, path: str) -> H5Array:
        return self._handle(path)

    def read_arrays(
        self, paths: Iterable[str], verify: Iterable[str] = ()
    ) -> dict[str, np.ndarray]:
        handles = [self._handle(p) for p in paths]
        check_opening_reads(handles)
        return {h.path: h.read() for h in handles}


def _version_tuple(value: Any) -> tuple[int, ...]:
    text = f"{value:.2f}".rstrip("0") if isinstance(value, float) else str(value)
    parts = [int(p) for p in text.replace("-", ".").split(".") if p.isdigit()]
    return tuple(parts) or (0,)


def _check_hyperspy(docs: dict[str, dict[str, Any]], url: str) -> None:
    """Refuse HDF5 files that are not HyperSpy files, or older than the supported ones."""
    attrs = docs.get(names.ZATTRS, {})
    file_format = attrs.get(names.ATTR_FILE_FORMAT)
    if file_format is None or str(file_format).lower() != names.HSPY_FILE_FORMAT.lower():
        what = "no file_format attribute" if file_format is None else f"file_format={file_format!r}"
        raise ZspyFormatError(
            f"{url}: an HDF5 file but not a HyperSpy .hspy file ({what}; HyperSpy writes "
            f"file_format={names.HSPY_FILE_FORMAT!r})"
        )
    version = attrs.get(names.ATTR_FORMAT_VERSION, "")
    if _version_tuple(version) < _version_tuple(MIN_HSPY_VERSION):
        raise UnsupportedVersionError(
            f"{url}: HyperSpy .hspy format version {version!r} is not supported; intake-zspy "
            f"reads versions {MIN_HSPY_VERSION} to {names.FORMAT_VERSION} (and newer, with a "
            "warning): load the file with HyperSpy and save it again"
        )


def load_h5_hierarchy(container: HDF5File) -> H5Hierarchy:
    """Open ``container`` with h5py and describe it as zarr documents.

    Raises
    ------
    ImportError
        h5py is missing (install ``intake-zspy[hspy]``).
    DamagedStoreError
        HDF5 cannot open the file (truncated or damaged).
    ZspyFormatError
        An HDF5 file that is not a HyperSpy file, or holds types HyperSpy never writes.
    UnsupportedVersionError
        A HyperSpy file older than :data:`MIN_HSPY_VERSION`.
    """
    require_h5py()  # the extra's name before anything else
    url = container.url
    with container.lock:
        handle = _opened(container)
        try:
            docs = _documents(handle, url)
        except (OSError, RuntimeError, KeyError) as exc:
            raise DamagedStoreError(f"{url}: damaged or truncated HDF5 file: {exc}") from exc
    _check_hyperspy(docs, url)
    return H5Hierarchy(container, docs)
