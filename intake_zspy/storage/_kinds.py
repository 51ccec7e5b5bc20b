"""The one vocabulary of store kinds."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["STORE_KINDS", "StoreKind"]

#: What holds a zspy store:
#:
#: - ``"directory"``: a directory on the local disk (nested or flat chunk keys);
#: - ``"zip"``: one zip file, on any filesystem;
#: - ``"prefix"``: the keys under a prefix of a remote or in-memory filesystem (S3, ...);
#: - ``"zarr"``: a zarr 3 ``Store`` object handed over by the caller;
#: - ``"hdf5"``: one HDF5 file (HyperSpy's ``.hspy``), read through h5py.
StoreKind = Literal["directory", "zip", "prefix", "zarr", "hdf5"]
STORE_KINDS: tuple[StoreKind, ...] = get_args(StoreKind)
