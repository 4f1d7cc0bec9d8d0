"""Clients for the provider archives the landing zone is filled from.

- :mod:`smflow.archive.cmr`: NASA Earthdata (SMAP, GLDAS, MODIS): CMR granule search + download.
- :mod:`smflow.archive.cds`: Copernicus Climate Data Store (ERA5-Land) through ``cdsapi``.
- :mod:`smflow.archive.credentials`: credentials from the environment or an Airflow connection.
- :mod:`smflow.archive.reconcile`: archive inventory (landing zone) vs the time-series store.
- :mod:`smflow.archive.local_server`: a local HTTP server speaking the CMR and CDS protocols,
  serving real files, for tests and demos.
"""
