"""Development stand-ins of the provider archives: local servers on 127.0.0.1 that speak the
providers' real protocols. Not part of the installed ``smflow`` package: the archive-client
tests talk to them (no Python mock of an archive), and the local stack runs one.

- :mod:`.local_server`: NASA CMR search + data files, Copernicus CDS (both protocols), serving
  the real files of ``../shared/data/real``.
- :mod:`.hawaii`: the same protocols serving one granule per day of the daily inputs, cut from
  the bundled Hawaii sample, with a publication state that tests and the stack can steer
  (late, reprocessed, corrupt granules; outages). ``python -m infra.providers serve`` runs it
  (the stack's service ``providers``).
- :mod:`.local_ftp`: the H SAF FTP (``pyftpdlib``, a test-only dependency).
- :mod:`.local_eumetsat`: the EUMETSAT Data Store (token, OpenSearch, zip download).
- :mod:`.local_catds`: CATDS SMOS L3 directory listings.
"""

from __future__ import annotations

from smflow.config import Settings

#: ``../shared/data/real`` (internal-only files), or None on a machine without it.
SHARED = Settings.load().shared_data_dir


def needs_real(folder: str, what: str):
    """A pytest mark: skip unless ``../shared/data/real/<folder>`` holds the real files served."""
    import pytest  # only the tests ask for it; the stack's server does not import pytest

    return pytest.mark.skipif(SHARED is None or not (SHARED / folder).is_dir(),
                              reason=f"needs ../shared/data/real/{folder} ({what})")
