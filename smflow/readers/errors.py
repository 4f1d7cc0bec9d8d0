"""What is wrong with an input file: :class:`GranuleError`, and the check that a file is netCDF.

Shared by every reader (the time-series layouts, the granule reader, the native product readers),
so none of them has to import another to raise it.
"""

from __future__ import annotations

from pathlib import Path

#: First bytes of the two netCDF containers: netCDF-4 (HDF5) and netCDF classic / 64-bit.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CLASSIC_SIGNATURE = b"CDF"


class GranuleError(ValueError):
    """A file that cannot be used as a granule of its product.

    Parameters
    ----------
    path : str or Path
        The offending file.
    problem : str
        What is wrong, phrased so the reader knows what to fix.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep the two-argument constructor picklable (Airflow, executors)
        return (type(self), (str(self.path), self.problem))


def check_signature(path: str | Path) -> None:
    """Raise :class:`GranuleError` unless ``path`` exists and starts like a netCDF file."""
    path = Path(path)
    if not path.is_file():
        raise GranuleError(path, "file does not exist (was the granule fetched?)")
    size = path.stat().st_size
    if size == 0:
        raise GranuleError(path, "file is empty (0 bytes); re-fetch it from the landing zone")
    with path.open("rb") as fh:
        head = fh.read(8)
    if not (head.startswith(_HDF5_SIGNATURE) or head.startswith(_CLASSIC_SIGNATURE)):
        raise GranuleError(
            path,
            f"not a netCDF file (starts with {head!r}, expected the HDF5 or CDF signature); "
            "was an error page or another format saved under this name?",
        )
