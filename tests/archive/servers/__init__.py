"""Local archive servers on 127.0.0.1 that speak the providers' real protocols and serve the real
files of ``../shared/data/real``: the stand-ins the archive-client tests talk to (no Python mock
of an archive). Test fakes, not part of the installed ``smflow`` package.

- :mod:`.local_server`: NASA CMR search + data files, Copernicus CDS (both protocols).
- :mod:`.local_ftp`: the H SAF FTP (``pyftpdlib``, a test-only dependency).
- :mod:`.local_eumetsat`: the EUMETSAT Data Store (token, OpenSearch, zip download).
- :mod:`.local_catds`: CATDS SMOS L3 directory listings.
"""

from __future__ import annotations

import pytest

from smflow.config import Settings

#: ``../shared/data/real`` (internal-only files), or None on a machine without it.
SHARED = Settings.load().shared_data_dir


def needs_real(folder: str, what: str) -> pytest.MarkDecorator:
    """Skip unless ``../shared/data/real/<folder>`` holds the real files the server serves."""
    return pytest.mark.skipif(SHARED is None or not (SHARED / folder).is_dir(),
                              reason=f"needs ../shared/data/real/{folder} ({what})")
