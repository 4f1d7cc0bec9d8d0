"""ISMN in-situ data (SCAN, COSMOS; Hawaii): hourly .stm files -> daily gauges and soil moisture.

Licence: ISMN terms allow scientific use but no onward distribution, so the files are only ever
read from ``../shared/data/real/ismn_hawaii`` (never copied into the repository or a bucket).

File format (ISMN "CEOP formatted" ``.stm``, MANIFEST section 2): one hourly record per line,
whitespace separated, 13 fields::

    YYYY/MM/DD HH:MM  YYYY/MM/DD HH:MM  CSE network station lat lon elev depth_from depth_to
    value ismn_flag provider_flag

(nominal and actual UTC time). ISMN flags: ``G`` good, ``C01..C03`` out of range, ``D01..D10``
dubious, several comma-joined. Missing hours are simply absent. Precipitation ``p`` is mm per
hour (= kg m-2); soil moisture ``sm`` m3 m-3 at ``depth_from .. depth_to`` [m].

Days are UTC days (Hawaii local time is UTC-10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

ISMN_SUBDIR = Path("ismn_hawaii") / "ISMN_TESTDATA_HAWAII"
GOOD_FLAG = "G"
_COLUMNS = ("date_nominal", "time_nominal", "date_actual", "time_actual", "cse", "network",
            "station", "lat", "lon", "elevation", "depth_from", "depth_to", "value", "ismn_flag",
            "provider_flag")
_NAME_RE = re.compile(
    r"^(?P<cse>[^_]+)_(?P<network>[^_]+)_(?P<station>.+?)_(?P<variable>[a-z_]+?)_"
    r"(?P<depth_from>\d+\.\d+)_(?P<depth_to>\d+\.\d+)_(?P<sensor>.+)_(?P<start>\d{8})_"
    r"(?P<end>\d{8})\.stm$"
)


@dataclass(frozen=True)
class StmFile:
    """One ISMN ``.stm`` file and what its name says (pangeo-forge style enumeration).

    Attributes
    ----------
    path : Path
    network, station_folder, variable, sensor : str
        From the file name (``station_folder`` is the folder name, e.g. ``IslandDairy``).
    depth_from, depth_to : float
        Sensor depth range [m].
    """

    path: Path
    network: str
    station_folder: str
    variable: str
    depth_from: float
    depth_to: float
    sensor: str

    @classmethod
    def from_path(cls, path: Path) -> "StmFile":
        m = _NAME_RE.match(path.name)
        if m is None:
            raise ValueError(
                f"{path}: not an ISMN .stm file name "
                "(CSE_Network_Station_Variable_depthFrom_depthTo_Sensor_start_end.stm)"
            )
        return cls(path, m["network"], m["station"], m["variable"], float(m["depth_from"]),
                   float(m["depth_to"]), m["sensor"])


def ismn_root(shared_dir: str | Path) -> Path:
    """The ``ISMN_TESTDATA_HAWAII`` folder below ``shared_dir`` (``../shared/data/real``).

    ``shared_dir`` may also be the ISMN folder itself.
    """
    shared_dir = Path(shared_dir)
    for candidate in (shared_dir / ISMN_SUBDIR, shared_dir / "ISMN_TESTDATA_HAWAII", shared_dir):
        if candidate.is_dir() and any(candidate.glob("*/*/*.stm")):
            return candidate
    raise FileNotFoundError(
        f"No ISMN data below {shared_dir} (expected {shared_dir / ISMN_SUBDIR}); ISMN files "
        "are not redistributable and live only in ../shared/data/real."
    )


def find_stm_files(shared_dir: str | Path, variable: str | None = None) -> list[StmFile]:
    """All ``.stm`` files (of ``variable``, e.g. ``p`` or ``sm``), sorted by path."""
    files = [StmFile.from_path(p) for p in sorted(ismn_root(shared_dir).glob("*/*/*.stm"))]
    return [f for f in files if variable is None or f.variable == variable]


def read_stm(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read one ``.stm`` file.

    Returns
    -------
    records : pd.DataFrame
        Index ``time`` (nominal UTC, datetime64[ns], hourly), columns ``value`` (float64),
        ``ismn_flag`` (str), ``provider_flag`` (str).
    station : dict
        ``network``, ``station``, ``lat``, ``lon``, ``elevation`` [m], ``depth_from``,
        ``depth_to`` [m] from the first record.
    """
    path = Path(path)
    table = pd.read_csv(path, sep=r"\s+", header=None, names=list(_COLUMNS),
                        dtype={"ismn_flag": str, "provider_flag": str, "station": str,
                               "network": str, "cse": str})
    if table.empty:
        raise ValueError(f"{path}: no records.")
    time = pd.to_datetime(table["date_nominal"] + " " + table["time_nominal"],
                          format="%Y/%m/%d %H:%M")
    records = pd.DataFrame(
        {"value": table["value"].astype(np.float64).to_numpy(),
         "ismn_flag": table["ismn_flag"].to_numpy(),
         "provider_flag": table["provider_flag"].to_numpy()},
        index=pd.DatetimeIndex(time.to_numpy().astype("datetime64[ns]"), name="time"),
    )
    first = table.iloc[0]
    station = {
        "network": str(first["network"]),
        "station": str(first["station"]),
        "lat": float(first["lat"]),
        "lon": float(first["lon"]),
        "elevation": float(first["elevation"]),
        "depth_from": float(first["depth_from"]),
        "depth_to": float(first["depth_to"]),
    }
    return records, station


def _days(start: date | str, end: date | str) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D")


def _daily(records: pd.DataFrame, days: pd.DatetimeIndex, how: str) -> tuple[np.ndarray, np.ndarray]:
    good = records[records["ismn_flag"] == GOOD_FLAG]["value"]
    good = good[(good.index >= days[0]) & (good.index < days[-1] + pd.Timedelta(days=1))]
    grouped = good.groupby(good.index.floor("D"))
    agg = grouped.sum() if how == "sum" else grouped.mean()
    count = grouped.count()
    return (agg.reindex(days).to_numpy(dtype=np.float64),
            count.reindex(days, fill_value=0).to_numpy(dtype=np.int64))


def _station_id(info: dict) -> str:
    return f"{info['network']}_{info['station']}"


def load_gauges(
    shared_dir: str | Path, start: date | str, end: date | str, *, min_hours: int = 20
) -> xr.Dataset:
    """Daily precipitation sums of the ISMN stations with a rain gauge (``p``).

    Parameters
    ----------
    shared_dir : path
        ``../shared/data/real`` (or the ISMN folder).
    start, end : date-like
        First and last UTC day.
    min_hours : int
        A day counts only with at least this many hourly records flagged ``G`` (of 24).

    Returns
    -------
    xr.Dataset
        ``precipitation_amount(station, time)`` [kg m-2] = sum of the good hourly values (NaN
        for days with fewer than ``min_hours``), ``hours_present(station, time)``; coordinates
        ``station`` (``SCAN_Island_Dairy``, ...), ``name``, ``network``, ``lat``, ``lon``,
        ``elevation``.
    """
    days = _days(start, end)
    rows, infos = [], []
    for f in find_stm_files(shared_dir, "p"):
        records, info = read_stm(f.path)
        total, hours = _daily(records, days, "sum")
        rows.append((np.where(hours >= min_hours, total, np.nan), hours))
        infos.append(info)
    return _dataset(
        infos, days, rows,
        name="precipitation_amount",
        attrs={"standard_name": "precipitation_amount", "units": "kg m-2",
               "long_name": "daily precipitation (rain gauge, sum of hourly values)",
               "cell_methods": f"time: sum (interval: 1 day, UTC; >= {min_hours} of 24 hourly "
                               "values flagged G)"},
        count_name="hours_present",
    )


def load_insitu_soil_moisture(
    shared_dir: str | Path, start: date | str, end: date | str, *, min_hours: int = 1
) -> xr.Dataset:
    """Daily mean in-situ soil moisture of the ISMN stations (hourly values flagged ``G`` only).

    Parameters
    ----------
    shared_dir : path
        ``../shared/data/real`` (or the ISMN folder).
    start, end : date-like
        First and last UTC day.
    min_hours : int
        Minimum number of good hourly values for a daily mean (default 1).

    Returns
    -------
    xr.Dataset
        ``soil_moisture(station, time)`` [m3 m-3], ``hours_present(station, time)``;
        coordinates ``station``, ``name``, ``network``, ``lat``, ``lon``, ``elevation``,
        ``depth_from``, ``depth_to`` and ``depth`` (layer centre) [m].
    """
    days = _days(start, end)
    rows, infos = [], []
    for f in find_stm_files(shared_dir, "sm"):
        records, info = read_stm(f.path)
        # The records print depths with 2 decimals (0.05); the file name keeps 0.050800.
        info = {**info, "depth_from": f.depth_from, "depth_to": f.depth_to}
        mean, hours = _daily(records, days, "mean")
        rows.append((np.where(hours >= min_hours, mean, np.nan), hours))
        infos.append(info)
    ds = _dataset(
        infos, days, rows,
        name="soil_moisture",
        attrs={"standard_name": "volume_fraction_of_condensed_water_in_soil", "units": "m3 m-3",
               "long_name": "in-situ volumetric soil moisture (ISMN)",
               "cell_methods": f"time: mean (interval: 1 day, UTC; hourly values flagged G, "
                               f">= {min_hours})"},
        count_name="hours_present",
    )
    depth_from, depth_to = ds["depth_from"].values, ds["depth_to"].values
    return ds.assign_coords(
        depth_from=("station", depth_from, {"units": "m", "positive": "down"}),
        depth_to=("station", depth_to, {"units": "m", "positive": "down"}),
        depth=("station", (depth_from + depth_to) / 2,
               {"standard_name": "depth", "units": "m", "positive": "down",
                "long_name": "centre of the sensed soil layer"}),
    )


def _dataset(infos, days, rows, *, name, attrs, count_name) -> xr.Dataset:
    if not infos:
        raise FileNotFoundError("No ISMN files of the requested variable were found.")
    order = np.argsort([_station_id(i) for i in infos], kind="stable")
    infos = [infos[k] for k in order]
    rows = [rows[k] for k in order]
    ds = xr.Dataset(
        {
            name: (("station", "time"), np.stack([r[0] for r in rows]), attrs),
            count_name: (("station", "time"), np.stack([r[1] for r in rows]),
                         {"long_name": "number of good hourly values in the day", "units": "1"}),
        },
        coords={
            "station": ("station", [_station_id(i) for i in infos], {"cf_role": "timeseries_id"}),
            "time": ("time", days.values.astype("datetime64[ns]"),
                     {"standard_name": "time", "long_name": "UTC day"}),
            "name": ("station", [i["station"] for i in infos]),
            "network": ("station", [i["network"] for i in infos]),
            "lat": ("station", [i["lat"] for i in infos],
                    {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("station", [i["lon"] for i in infos],
                    {"standard_name": "longitude", "units": "degrees_east"}),
            "elevation": ("station", [i["elevation"] for i in infos],
                          {"standard_name": "height_above_mean_sea_level", "units": "m"}),
            "depth_from": ("station", [i["depth_from"] for i in infos], {"units": "m"}),
            "depth_to": ("station", [i["depth_to"] for i in infos], {"units": "m"}),
        },
        attrs={"featureType": "timeSeries", "source": "International Soil Moisture Network "
               "(ISMN): SCAN (USDA-NRCS), COSMOS; internal use only, not redistributable",
               "references": "Dorigo et al. (2021), HESS 25, 5749-5804, "
                             "doi:10.5194/hess-25-5749-2021"},
    )
    return ds
