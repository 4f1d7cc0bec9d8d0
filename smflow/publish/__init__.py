"""Publishing of the daily products (no heavy imports here; import the modules you need).

- :mod:`smflow.publish.cf`: the daily product dataset split into three CF-1.8 netCDF files
  (``merged-sm``, ``sm2rain-precip``, ``tc-diagnostics``), reproducible to the byte.
- :mod:`smflow.publish.quicklook`: PNG quicklook maps per variable, reproducible to the byte.
- :mod:`smflow.publish.stac`: the day's STAC item, the static collection and root catalog.
- :mod:`smflow.publish.publisher`: :class:`~smflow.publish.publisher.Publisher`, atomic
  (stage, verify, place) and idempotent placement of all of it in the products bucket.
"""
