"""intake v1 catalogs of zspy data: the signals of one store, the stores under a URL."""

from __future__ import annotations

from intake_zspy.catalog._listing import StoreInfo, find_stores
from intake_zspy.catalog.experiments import ZspyExperimentsCatalog
from intake_zspy.catalog.stores import ZspyStoresCatalog

__all__ = ["StoreInfo", "ZspyExperimentsCatalog", "ZspyStoresCatalog", "find_stores"]
