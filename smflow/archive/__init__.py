"""Clients for the provider archives the landing zone is filled from.

- :mod:`smflow.archive.base`: what all clients share: :class:`~smflow.archive.base.ArchiveError`,
  :class:`~smflow.archive.base.RemoteFile`, the :class:`~smflow.archive.base.ArchiveClient`
  interface (``granules(product, day)``, ``download(granule, dest_dir)``) and verified, atomic
  downloads (:class:`~smflow.archive.base.AtomicDownload`).
- :mod:`smflow.archive.cmr`: NASA Earthdata (SMAP, GLDAS, MODIS): CMR granule search + download.
- :mod:`smflow.archive.cds`: Copernicus Climate Data Store (ERA5-Land) through ``cdsapi``
  (``UID:KEY`` keys and the new colon-less personal access tokens).
- :mod:`smflow.archive.hsaf`: H SAF ASCAT NRT BUFR (H101/H102/H103/H16) and H14 GRIB over FTP.
- :mod:`smflow.archive.eumetsat`: EUMETSAT Data Store (ASCAT L2 SSM SOMO25/SOMO12): token,
  OpenSearch search, zip download.
- :mod:`smflow.archive.catds`: CATDS SMOS L3 daily soil moisture from HTTPS directory listings.
- :mod:`smflow.archive.credentials`: credentials from the environment or an Airflow connection.
- :mod:`smflow.archive.reconcile`: archive inventory (landing zone) vs the time-series store;
  smflow product → provider archive client.

The local servers that speak each real protocol and serve the real files (CMR, CDS, H SAF FTP,
Data Store, CATDS) are development stand-ins, not part of the package: ``infra/providers/``
(``infra/providers/hawaii.py`` serves the daily inputs to the local stack). The daily fetch of the
inputs (search, verified download, landing with provenance) is :mod:`smflow.archive.fetch`.
"""
