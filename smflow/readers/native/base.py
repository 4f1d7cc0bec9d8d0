"""File-handler base class, registry and the shared decoding helpers of the native readers.

A native reader follows the satpy file-handler model: one :class:`FileHandler` subclass per
product family, told which product it reads by a :class:`~smflow.readers.native.facts.NativeProduct`
(variable names, scale factors, fills, valid ranges, flag rules, units) that lives in
:mod:`smflow.readers.native.facts`, never in the handler. :func:`open_native` picks the product
from the file name (or is told it), checks the file's signature, and lets the handler decode it.

Every handler returns a CF-annotated :class:`xarray.Dataset` on the product's own grid or swath
with ``lat``/``lon`` coordinates, SI units (``soil_moisture`` m3 m-3, ``degree_of_saturation``
percent, ``brightness_temperature`` K, ``land_surface_temperature`` K, ``elevation`` m,
``precipitation_amount`` kg m-2), a boolean ``quality_mask`` where the product has flags, the raw
flag variables with CF ``flag_masks``/``flag_values`` and ``flag_meanings``, and the global
attributes ``product``, ``source_file``, ``title``, ``licence`` and ``attribution``.

Files are decoded completely when opened, so that a truncated or corrupted file raises
:class:`~smflow.readers.GranuleError` here, naming the file and the problem, and not later inside
a dask computation; the decoded arrays are then handed out dask-backed (``chunks``).
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

# Import order matters: the eccodes wheel (eckitlib) ships its own libproj/libsqlite3 and is
# loaded with global symbols; a pyproj or rasterio extension loaded *after* it binds to those
# and pyproj then fails with "proj_create: no database context specified". Loading both here,
# before any handler imports eccodes or cfgrib (lazily, inside decode), keeps their own PROJ.
import pyproj  # noqa: F401,E402
import pyproj.transformer  # noqa: F401,E402
import rasterio  # noqa: F401,E402
import xarray as xr

from smflow.readers.granule import GranuleError

if TYPE_CHECKING:
    from smflow.readers.native.facts import NativeProduct

#: First bytes of the container formats the native readers accept.
SIGNATURES: Mapping[str, tuple[bytes, ...]] = {
    "hdf5": (b"\x89HDF\r\n\x1a\n",),
    "netcdf": (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05"),
    "netcdf3": (b"CDF\x01", b"CDF\x02", b"CDF\x05"),
    "hdf4": (b"\x0e\x03\x13\x01",),
    "grib": (b"GRIB",),
    "bufr": (b"BUFR",),
    "tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    "zip": (b"PK\x03\x04",),
    "gzip": (b"\x1f\x8b",),
    "text": (),
    "binary": (),
}

#: Exceptions the reading libraries raise on damaged input (h5py/netCDF4: OSError/RuntimeError,
#: eccodes: its own errors derive from Exception, rasterio: RasterioIOError is an OSError, zlib:
#: zlib.error, numpy reshape of a short file: ValueError, truncated zip/gzip: EOFError).
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, RuntimeError, ValueError, KeyError, IndexError, EOFError, zlib.error, TypeError,
)


def _library_errors() -> tuple[type[BaseException], ...]:
    """Error classes of the format libraries that do not derive from the built-in ones."""
    import tarfile
    import xml.etree.ElementTree as ET
    import zipfile

    errors: list[type[BaseException]] = [tarfile.TarError, zipfile.BadZipFile, ET.ParseError]
    try:
        import gribapi.errors as ge  # shipped with the eccodes wheel
        errors.append(ge.GribInternalError)
    except ImportError:  # pragma: no cover - eccodes is a pinned dependency
        pass
    try:
        from pyhdf.error import HDF4Error
        errors.append(HDF4Error)
    except ImportError:  # pragma: no cover - pyhdf is a pinned dependency
        pass
    from rasterio.errors import RasterioError
    errors.append(RasterioError)
    return tuple(errors)


def check_signature(path: Path, container: str) -> None:
    """Raise :class:`GranuleError` unless ``path`` is a non-empty file starting like ``container``.

    ``container`` is a key of :data:`SIGNATURES`. BUFR and GRIB may follow a WMO bulletin
    header, so for them the magic is searched in the first 512 bytes.
    """
    if not path.is_file():
        raise GranuleError(path, "file does not exist (was it fetched?)")
    size = path.stat().st_size
    if size == 0:
        raise GranuleError(path, "file is empty (0 bytes); fetch it again")
    magics = SIGNATURES[container]
    if not magics:
        return
    with path.open("rb") as fh:
        head = fh.read(512)
    if container in ("bufr", "grib"):
        ok = any(m in head for m in magics)
    else:
        ok = any(head.startswith(m) for m in magics)
    if not ok:
        raise GranuleError(
            path,
            f"not a {container.upper()} file (starts with {head[:8]!r}); the file is corrupt, "
            "truncated at the start, or another format was saved under this name",
        )


@contextlib.contextmanager
def reading(path: Path, what: str = "read") -> Iterator[None]:
    """Turn a reading library's exception into :class:`GranuleError` naming ``path``.

    Use around every library call that touches file bytes, so a damaged file never escapes as
    a bare ``OSError`` or eccodes error.
    """
    try:
        yield
    except GranuleError:
        raise
    except (*READ_ERRORS, *_library_errors()) as exc:
        raise GranuleError(
            path, f"cannot {what} ({type(exc).__name__}: {exc}); the file is probably truncated "
            "or corrupt, fetch it again"
        ) from exc
    except AttributeError as exc:
        # netCDF4 reports an unreadable HDF5 attribute as AttributeError("NetCDF: Can't open HDF5
        # attribute"); any other AttributeError is a bug here, not a damaged file.
        if not str(exc).startswith("NetCDF:"):
            raise
        raise GranuleError(
            path, f"cannot {what} (unreadable attribute: {exc}); the file is probably corrupt, fetch it again"
        ) from exc


def require(path: Path, available: Sequence[str] | Mapping[str, Any], names: Sequence[str],
            what: str = "variable") -> None:
    """Raise :class:`GranuleError` if any of ``names`` is missing from ``available``."""
    missing = [n for n in names if n not in available]
    if missing:
        found = sorted(map(str, available))
        shown = found if len(found) <= 40 else found[:40] + ["..."]
        raise GranuleError(
            path, f"has no {what}(s) {missing} (found: {shown}); wrong product, or the file "
            "was subset without them"
        )


def decode_packed(
    raw: np.ndarray,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    fills: Sequence[float] = (),
    valid_raw: tuple[float, float] | None = None,
    dtype: type = np.float64,
) -> np.ndarray:
    """``raw * scale + offset`` as floats, NaN where ``raw`` is a fill or outside ``valid_raw``.

    The valid range is applied to the *raw* (packed) values, which is how CF and most product
    specifications state it, and sidesteps the signed/unsigned attribute traps of some files.
    """
    raw = np.asarray(raw)
    bad = np.zeros(raw.shape, dtype=bool)
    for fill in fills:
        if np.issubdtype(raw.dtype, np.floating):
            bad |= np.isnan(raw) if np.isnan(fill) else raw == fill
        elif _representable(fill, raw.dtype):
            bad |= raw == fill
    if np.issubdtype(raw.dtype, np.floating):
        bad |= ~np.isfinite(raw)
    if valid_raw is not None:
        with np.errstate(invalid="ignore"):
            bad |= (raw < valid_raw[0]) | (raw > valid_raw[1])
    out = raw.astype(dtype) * dtype(scale) + dtype(offset)
    out[bad] = np.nan
    return out


def _representable(value: float, dtype: np.dtype) -> bool:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(value) == int(value) and info.min <= int(value) <= info.max
    return True


def check_plausible(path: Path, name: str, values: np.ndarray, bounds: tuple[float, float] | None,
                    units: str = "") -> None:
    """Raise :class:`GranuleError` if a decoded, non-NaN value lies outside physical ``bounds``.

    The product's valid range masks values the retrieval flags as unusable; these bounds are
    wider, physically impossible values that only a damaged file (a flipped bit in an
    uncompressed array, a wrong scale factor) produces.
    """
    if bounds is None:
        return
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(v) & ((v < bounds[0]) | (v > bounds[1]))
    if outside.any():
        bad = v[outside]
        raise GranuleError(
            path,
            f"{name} has {int(outside.sum())} value(s) outside the physically possible range "
            f"{bounds[0]}..{bounds[1]} {units} (e.g. {bad.flat[0]:.6g}); the file is corrupt or "
            "its scaling attributes are wrong",
        )


def parse_flag_masks(value: Any) -> np.ndarray:
    """Flag masks from an attribute such as ``b"1s, 2s, 4s, 8s"`` (SMAP) or an int array."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return np.array([int(v) for v in re.findall(r"-?\d+", value)], dtype=np.int64)
    return np.atleast_1d(np.asarray(value, dtype=np.int64))


def text_attr(value: Any) -> Any:
    """HDF5/HDF4 attributes as plain Python values (bytes -> str, 1-element arrays -> scalar)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            return " ".join(v.decode("utf-8", "replace") for v in value.ravel())
        if value.size == 1:
            return value.ravel()[0].item()
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def latlon_coords(lat: np.ndarray, lon: np.ndarray, dims: tuple[str, ...]) -> dict[str, tuple]:
    """CF ``lat``/``lon`` coordinate tuples (longitudes wrapped to -180..180)."""
    lon = np.asarray(lon, dtype=np.float64)
    lon = np.where(np.isfinite(lon), ((lon + 180.0) % 360.0) - 180.0, np.nan)
    return {
        "lat": (dims, np.asarray(lat, dtype=np.float64),
                {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude"}),
        "lon": (dims, lon,
                {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude"}),
    }


def grid_mapping_variable(crs_wkt: str, **extra: Any) -> xr.DataArray:
    """A CF grid-mapping scalar (``crs``) carrying the CRS as WKT."""
    return xr.DataArray(np.int32(0), attrs={"crs_wkt": crs_wkt, "spatial_ref": crs_wkt, **extra})


class FileHandler:
    """Base class of the native file handlers (satpy ``BaseFileHandler`` style).

    Subclasses set :attr:`container` and implement :meth:`decode`, which returns the dataset on
    the product's grid; :meth:`read` wraps it with signature checks, error translation, global
    attributes and dask chunking.

    Parameters
    ----------
    path : Path
        The file.
    product : NativeProduct
        Facts about the product the file belongs to.
    apply_quality : bool
        Set the main variable(s) to NaN where ``quality_mask`` is False (the decoded-granule
        contract of ``docs/DESIGN.md``); with False only fills and values outside the valid range
        are NaN and the mask is still returned.
    """

    #: Container format (key of :data:`SIGNATURES`).
    container: ClassVar[str] = "binary"

    def __init__(self, path: Path, product: NativeProduct, *, apply_quality: bool = True,
                 **options: Any) -> None:
        self.path = Path(path)
        self.product = product
        self.apply_quality = apply_quality
        self.options = options

    # -- to implement --------------------------------------------------------------------------
    def decode(self) -> xr.Dataset:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------------------------
    def read(self, chunks: str | int | dict | None = "auto") -> xr.Dataset:
        """Decode the file; :class:`GranuleError` for anything wrong with it."""
        check_signature(self.path, self.container)
        with reading(self.path, f"read it as {self.product.title}"):
            ds = self.decode()
        self.check_ranges(ds)
        ds.attrs = {
            "Conventions": "CF-1.10",
            # A handler that returns another contract's dataset (the time-series cells) keeps
            # that contract's product name; native_product is always the facts' name.
            "product": ds.attrs.get("product") or self.product.name,
            "native_product": self.product.name,
            "title": self.product.title,
            "source_file": self.path.name,
            "source_format": self.product.file_format,
            "reader": f"smflow.readers.native.{type(self).__module__.rsplit('.', 1)[-1]}."
                      f"{type(self).__name__}",
            "licence": self.product.licence,
            "attribution": self.product.attribution,
            **{k: v for k, v in ds.attrs.items()
               if k not in ("product", "source_file", "Conventions")},
        }
        if chunks is not None:  # data dask-backed; coordinates stay in memory for indexing
            ds = ds.assign({name: var.chunk(chunks) for name, var in ds.data_vars.items()})
        return ds

    def check_ranges(self, ds: xr.Dataset) -> None:
        """Physical-plausibility check of the variables named in the product facts."""
        for name, bounds in self.product.plausible.items():
            if name in ds:
                check_plausible(self.path, name, ds[name].values, bounds,
                                ds[name].attrs.get("units", ""))

    def quality(self, passes: np.ndarray, data: np.ndarray) -> np.ndarray:
        """``data`` with NaN where ``passes`` is False, if :attr:`apply_quality`."""
        if not self.apply_quality:
            return data
        return np.where(passes, data, np.nan)

    def mask_variable(self, passes: np.ndarray, dims: tuple[str, ...], rules: str) -> tuple:
        """The ``quality_mask`` variable tuple (True = the observation passes ``rules``)."""
        return (dims, np.asarray(passes, dtype=bool), {
            "long_name": f"observation passes the {self.product.name} quality checks",
            "comment": rules,
            "flag_values": np.array([0, 1], dtype=np.int8),
            "flag_meanings": "rejected passes",
        })


#: Handler classes by name (filled by :func:`register`).
HANDLERS: dict[str, type[FileHandler]] = {}


def register(cls: type[FileHandler]) -> type[FileHandler]:
    """Class decorator: make a handler known to :func:`open_native` by its class name."""
    HANDLERS[cls.__name__] = cls
    return cls


def flag_attrs(masks: Sequence[int] | None = None, values: Sequence[int] | None = None,
               meanings: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    """CF flag attributes (``flag_masks`` or ``flag_values`` with ``flag_meanings``)."""
    attrs: dict[str, Any] = dict(extra)
    if masks is not None:
        attrs["flag_masks"] = np.asarray(masks, dtype=np.int64)
    if values is not None:
        attrs["flag_values"] = np.asarray(values, dtype=np.int64)
    if meanings:
        attrs["flag_meanings"] = " ".join(meanings)
    return attrs


def bits_clear(flags: np.ndarray, mask: int) -> np.ndarray:
    """True where none of the bits of ``mask`` is set in the integer ``flags``."""
    return (np.asarray(flags).astype(np.int64) & int(mask)) == 0


def first_existing(names: Sequence[str], available: Callable[[str], bool]) -> str | None:
    """The first of ``names`` for which ``available(name)`` is True."""
    for name in names:
        if available(name):
            return name
    return None


def open_netcdf(path: Path):
    """``netCDF4.Dataset`` of ``path`` with automatic masking/scaling off (facts decide)."""
    import netCDF4

    with path.open("rb") as fh:
        classic = fh.read(3) == b"CDF"
    if classic:
        # netCDF-C reads the missing tail of a truncated classic file as fill values without
        # an error; scipy's reader sizes every variable from the header and notices.
        from scipy.io import netcdf_file

        with reading(path, "read it as classic netCDF"), \
                netcdf_file(path, "r", mmap=False) as check:
            for var in check.variables.values():
                var.data  # noqa: B018 - reading is the check
    with reading(path, "open it as netCDF"):
        ds = netCDF4.Dataset(path, "r")
    ds.set_auto_maskandscale(False)
    return ds


def check_text_complete(path: Path) -> None:
    """Raise :class:`GranuleError` unless a text file ends with a newline (not cut short)."""
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
    if last != b"\n":
        raise GranuleError(path, "text does not end with a newline: the file was cut short "
                           "(truncated download?)")


def nc_attrs(var: Any, keep: Sequence[str] | None = None) -> dict[str, Any]:
    """Attributes of a netCDF4 variable as plain values (optionally only ``keep``)."""
    names = var.ncattrs()
    return {k: text_attr(var.getncattr(k)) for k in names if keep is None or k in keep}


def nc_time(path: Path, var: Any) -> np.ndarray:
    """Decoded CF time values of a netCDF4 time variable (datetime64[ns])."""
    from xarray.coding.times import decode_cf_datetime

    units = var.getncattr("units").strip() if "units" in var.ncattrs() else ""
    if " since " not in units:
        raise GranuleError(path, f"time variable {var.name!r} has no CF units ({units!r})")
    calendar = var.getncattr("calendar") if "calendar" in var.ncattrs() else "standard"
    raw = np.asarray(var[:], dtype=np.float64)
    return np.asarray(decode_cf_datetime(raw, units.replace(" UTC", ""), calendar,
                                         time_unit="ns")).astype("datetime64[ns]")


def axis_coords(lat: np.ndarray, lon: np.ndarray) -> dict[str, tuple]:
    """1-D ``lat(lat)`` / ``lon(lon)`` coordinates of a regular grid (lon wrapped to +-180)."""
    lat_c = latlon_coords(lat, np.zeros_like(np.asarray(lat, dtype=float)), ("lat",))["lat"]
    lon_c = latlon_coords(np.zeros_like(np.asarray(lon, dtype=float)), lon, ("lon",))["lon"]
    return {"lat": lat_c, "lon": lon_c}


def offsets_to_datetime(epoch: str, values: np.ndarray, seconds_per_unit: float) -> np.ndarray:
    """``epoch + values * seconds_per_unit`` as datetime64[ns]; NaT where ``values`` is NaN."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    with np.errstate(invalid="ignore"):  # beyond datetime64[ns] (+-292 years): not a time
        ok &= np.abs(v * seconds_per_unit) < 9.2e9
    ns = np.zeros(v.shape, dtype=np.int64)
    ns[ok] = np.round(v[ok] * seconds_per_unit * 1e9).astype(np.int64)
    out = np.datetime64(epoch, "ns") + ns.astype("timedelta64[ns]")
    return np.where(ok, out, np.datetime64("NaT", "ns")).astype("datetime64[ns]")
