"""``.zspy`` accessors: ``da.zspy.to_zspy(url)`` and ``ds.zspy.to_zspy(url)``.

``import intake_zspy`` does not import xarray (it takes a second or two), so the
accessor cannot simply be registered at import time. Instead :func:`install` (run by
``intake_zspy/__init__.py``) registers it

- at once, when xarray is already imported;
- otherwise right after xarray's own import finishes, through a one-shot finder on
  :data:`sys.meta_path` that watches for the top-level ``xarray`` module and removes
  itself once it has fired.

:func:`register` is idempotent and is also called on first access of any lazily
resolved name of :mod:`intake_zspy` (``open_dataset``, ``to_zspy``, ...) and when xarray
loads the ``zspy`` backend, so ``xr.open_dataset(url, engine="zspy").zspy`` works even
when the user never imported ``intake_zspy`` themselves.

The one remaining edge: a finder inserted ahead of ours that imports xarray by other
means (none of the standard ones do) hides the import from the hook; the accessor then
appears on first use of any ``intake_zspy`` function, or after ``register()``. (Like
every accessor, it is also lost by ``importlib.reload(xarray)``.)
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    import xarray as xr

__all__ = ["ZspyAccessor", "install", "register"]

ACCESSOR_NAME = "zspy"


class ZspyAccessor:
    """zspy methods on DataArrays and Datasets."""

    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    def to_zspy(self, urlpath: str | os.PathLike[str], **kwargs: Any) -> str:
        """Write this object as a zspy store; see :func:`intake_zspy.to_zspy`."""
        from intake_zspy.writer import to_zspy

        return to_zspy(self._obj, urlpath, **kwargs)

    def _repr_html_(self) -> str:
        """The notebook view: title, axes, metadata tree and a thumbnail when cheap."""
        from intake_zspy.archive._repr import dataset_html

        return dataset_html(self._obj)


_lock = threading.RLock()
_registered = False


def register() -> bool:
    """Register ``.zspy`` on ``xr.DataArray`` and ``xr.Dataset`` if xarray is imported.

    Returns whether the accessor is registered. Never imports xarray itself; safe to
    call any number of times, from any thread.
    """
    global _registered
    if _registered:
        return True
    xarray = sys.modules.get("xarray")
    # xarray half-way through its own import: the hook registers when it finishes
    if xarray is None or not hasattr(xarray, "register_dataset_accessor"):
        return False
    with _lock:
        if not _registered:
            xarray.register_dataarray_accessor(ACCESSOR_NAME)(ZspyAccessor)
            xarray.register_dataset_accessor(ACCESSOR_NAME)(ZspyAccessor)
            _registered = True
            _uninstall_hook()
    return True


# The hook classes follow the importlib protocols without subclassing importlib.abc,
# whose import alone costs more than the rest of ``import intake_zspy``.


class _RegisterAfterExec:
    """Runs xarray's own loader, then registers the accessor and gets out of the way."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # xarray's modules see their real loader (e.g. for importlib.resources)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        try:
            register()
        except Exception as exc:  # noqa: BLE001 - never break ``import xarray`` over it
            import warnings

            from intake_zspy.errors import ZspyWarning

            warnings.warn(f"could not register the .zspy accessor: {exc}", ZspyWarning, 2)


class _XarrayImportHook:
    """Wraps the loader of the top-level ``xarray`` module; ignores every other import."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname != "xarray":
            return None
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, _XarrayImportHook):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if loader is not None and hasattr(loader, "exec_module"):
                spec.loader = _RegisterAfterExec(loader)  # type: ignore[assignment]
            return spec
        return None


_hook: _XarrayImportHook | None = None


def _uninstall_hook() -> None:
    global _hook
    with _lock:
        if _hook is not None:
            try:
                sys.meta_path.remove(_hook)
            except ValueError:  # someone else removed it
                pass
            _hook = None


def install() -> None:
    """Register the accessor now if xarray is imported, else when it gets imported."""
    global _hook
    if register():
        return
    with _lock:
        if _hook is None and not _registered:
            _hook = _XarrayImportHook()
            sys.meta_path.insert(0, _hook)
