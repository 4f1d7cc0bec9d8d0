"""The records of the product catalogue: frozen dataclasses, built from ``products/*.yaml``.

One :class:`CatalogEntry` per product holds every fact the system knows about it; the records
the readers and checks were written against (:class:`Product` for the time-series cell files,
:class:`NativeProduct` for the provider's own files, :class:`FlagRule`, :class:`VariableFacts`)
are parts of that entry, never defined anywhere else. The loader is :mod:`smflow.catalog.load`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

Layout = Literal["orthogonal", "contiguous_ragged", "indexed_ragged"]
FlagTest = Literal["bits_clear", "equals", "in_set"]
LicenceClass = Literal["open", "internal"]
RegridMethod = Literal["nearest", "bilinear", "mean"]

#: Cell files of the reshuffled time series are named by their 5 deg cell: ``0165.nc``.
CELL_FILE_NAME = re.compile(r"^\d{4}\.nc$")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class FlagRule:
    """One quality-flag test an observation must pass.

    Attributes
    ----------
    variable : str
        Raw flag variable in the product file (kept, unmodified, in decoded granules).
    test : {"bits_clear", "equals", "in_set"}
        ``bits_clear``: ``flag & value == 0``; ``equals``: ``flag == value``;
        ``in_set``: ``flag in values``.
    value : int
        Bit mask (``bits_clear``) or the one accepted value (``equals``).
    values : tuple of int
        Accepted values (``in_set``).
    meaning : str
        What passing the test means, in the product's own words.
    """

    variable: str
    test: FlagTest
    value: int = 0
    values: tuple[int, ...] = ()
    meaning: str = ""

    def passes(self, flags: np.ndarray) -> np.ndarray:
        """Boolean array, True where ``flags`` pass this rule (integer flags, any shape)."""
        flags = np.asarray(flags)
        if self.test == "bits_clear":
            return (flags.astype(np.int64) & self.value) == 0
        if self.test == "equals":
            return flags == self.value
        return np.isin(flags, self.values)


@dataclass(frozen=True)
class Product:
    """How the time-series cell files of one product are decoded.

    Attributes
    ----------
    name : str
        Name used everywhere in the system (``smap``, ``era5_land``, ...): the catalogue entry's.
    title : str
        Product name and version as the provider calls it.
    folder : str
        Folder of the cell files below a ``hawaii_timeseries`` root (bundle or ../shared).
    cells : tuple of str
        Cell files (``0165`` = 15-20 N, 160-155 W; ``0166`` = 20-25 N) that cover the domain.
    layout : {"orthogonal", "contiguous_ragged", "indexed_ragged"}
        CF discrete-sampling-geometry layout of the cell files.
    variable : str
        Variable in the product file.
    output_name : str
        Name of the converted variable in decoded granules (``soil_moisture`` or
        ``degree_of_saturation``).
    source_units, units : str
        Units in the file and after conversion.
    conversion_factor : float
        ``units = source_units * conversion_factor`` (GLDAS: kg m-2 in a 100 mm layer -> m3 m-3).
    valid_range : (float, float) or None
        Valid range in output units (inclusive); values outside are rejected.
    fill_value : float or None
        Fill value of ``variable`` in the file (None: missing values are NaN).
    flag_rules : tuple of FlagRule
        Tests an observation must pass (all of them).
    auxiliary : mapping of str to str
        Further file variables kept in decoded granules, mapped to their decoded names.
    keep_variables : tuple of str
        Variables (besides coordinates) kept in bundled files and landing-zone granules.
    nominal_time : str
        When in the (UTC) day the product is sampled.
    native_resolution_m : float
        Sample spacing [m]; the regridding radius of influence derives from it.
    licence, attribution : str
        Licence in one line, and the attribution text required by the provider.
    redistributable : bool
        May be bundled in this repository and published (licence class ``open``).
    standard_name, long_name : str
        CF attributes of ``output_name``.
    cell_pattern : str
        Regular expression of a cell file's path (folder and name), for
        :func:`smflow.readers.native.product_for_path`.
    """

    name: str
    title: str
    folder: str
    cells: tuple[str, ...]
    layout: Layout
    variable: str
    output_name: str
    source_units: str
    units: str
    conversion_factor: float
    valid_range: tuple[float, float] | None
    fill_value: float | None
    flag_rules: tuple[FlagRule, ...]
    auxiliary: Mapping[str, str] = field(default_factory=_empty)
    keep_variables: tuple[str, ...] = ()
    nominal_time: str = ""
    native_resolution_m: float = 0.0
    licence: str = ""
    attribution: str = ""
    redistributable: bool = False
    standard_name: str | None = "volume_fraction_of_condensed_water_in_soil"
    long_name: str = "volumetric soil moisture"
    cell_pattern: str = ""

    @property
    def regrid_radius_m(self) -> float:
        """Radius of influence [m] for nearest-neighbour regridding of the time series.

        0.75 of the sample spacing: just beyond the half diagonal (0.707) of a sample's cell, so
        every domain cell inside the product's footprint finds a sample and none borrows one
        from beyond the next.
        """
        return 0.75 * self.native_resolution_m

    @property
    def flag_variables(self) -> tuple[str, ...]:
        """Raw flag variables (each once, in rule order)."""
        return tuple(dict.fromkeys(rule.variable for rule in self.flag_rules))


@dataclass(frozen=True)
class VariableFacts:
    """How one file variable becomes one output variable.

    ``output = raw * scale + offset``; NaN where ``raw`` is one of ``fills`` or outside
    ``valid_raw`` (inclusive, in raw units).
    """

    source: str
    name: str
    units: str
    scale: float = 1.0
    offset: float = 0.0
    fills: tuple[float, ...] = ()
    valid_raw: tuple[float, float] | None = None
    standard_name: str | None = None
    long_name: str = ""

    def attrs(self, **extra: Any) -> dict[str, Any]:
        """CF attributes of the output variable."""
        attrs: dict[str, Any] = {"units": self.units, "long_name": self.long_name or self.name,
                                 "source_variable": self.source}
        if self.standard_name:
            attrs["standard_name"] = self.standard_name
        if self.valid_raw is not None:
            attrs["valid_min"] = self.valid_raw[0] * self.scale + self.offset
            attrs["valid_max"] = self.valid_raw[1] * self.scale + self.offset
        attrs.update(extra)
        return attrs


@dataclass(frozen=True)
class NativeProduct:
    """How the files of one product are read in their native format.

    Attributes
    ----------
    name : str
        Product name (the catalogue entry's; ``open_native(path, product=name)``).
    title : str
        Product name and version as the provider calls it.
    handler : str
        Name of the :class:`~smflow.readers.native.base.FileHandler` class that reads it.
    patterns : tuple of str
        Regular expressions searched in the file's POSIX path (the file name, or the last
        folders and the name for the cell files whose name alone says nothing).
    file_format : str
        Container format in words.
    variables : tuple of VariableFacts
        Variables decoded (the first is the main variable).
    flag_rules : tuple of FlagRule
        Tests an observation must pass (all of them) to be True in ``quality_mask``.
    plausible : mapping of str to (float, float)
        Physically possible range of output variables; a value outside means a damaged file.
    options : mapping
        Product-specific constants (layer depths, frequencies, grid sizes, ...).
    timeseries_product : Product or None
        For time-series cell files: the record decoding them.
    licence, attribution : str
        Licence in one line and the attribution the provider asks for.
    redistributable : bool
        May files of this product be copied into the repository or published (never for
        ISMN, EUMETSAT/H SAF, ESA CCI and MERIT-derived data).
    cells : NativeProduct or None
        The product's time-series cell files, when it has both a native file format and cell
        files (SMAP, GLDAS, SMOS L3): :meth:`for_path` picks the one a file belongs to.
    """

    name: str
    title: str
    handler: str
    patterns: tuple[str, ...]
    file_format: str
    variables: tuple[VariableFacts, ...] = ()
    flag_rules: tuple[FlagRule, ...] = ()
    plausible: Mapping[str, tuple[float, float]] = field(default_factory=_empty)
    options: Mapping[str, Any] = field(default_factory=_empty)
    timeseries_product: Product | None = None
    licence: str = ""
    attribution: str = ""
    redistributable: bool = False
    cells: NativeProduct | None = None

    def matches(self, path: str | Path) -> bool:
        """True if one of :attr:`patterns` (or of the cell files') is found in ``path``."""
        text = Path(path).as_posix()
        if any(re.search(p, text) for p in self.patterns):
            return True
        return self.cells is not None and self.cells.matches(path)

    def for_path(self, path: str | Path) -> NativeProduct:
        """The record that reads ``path``: :attr:`cells` for a cell file, else this one.

        A cell file is recognised by its folder pattern or, for a copy elsewhere, by its name
        (``<cell>.nc``, four digits).
        """
        if self.cells is None:
            return self
        text = Path(path).as_posix()
        if self.cells.matches(text) or CELL_FILE_NAME.match(Path(path).name):
            return self.cells
        return self

    def var(self, name: str) -> VariableFacts:
        """The :class:`VariableFacts` whose output name is ``name``."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} has no variable {name!r}; known: "
                       f"{[v.name for v in self.variables]}")


@dataclass(frozen=True)
class RegridSpec:
    """Default regridding of the product's native files onto a domain grid.

    Attributes
    ----------
    method : {"nearest", "bilinear", "mean"}
        See :func:`smflow.regrid.native_to_domain`.
    radius_m : float or None
        Search radius [m] of ``nearest`` / swath ``bilinear``; None for ``mean``.
    rationale : str
        Why (paper or product guide).
    """

    method: RegridMethod
    radius_m: float | None = None
    rationale: str = ""


@dataclass(frozen=True)
class NativeGrid:
    """The regular grid a product's observations sit on (cell centres), for the wrong-grid check.

    Parameters
    ----------
    name : str
        Human name, used in failure reasons (e.g. ``EASE-2 global 36 km``).
    crs : str
        CRS of the grid axes (``EPSG:4326`` for a lat/lon grid, ``EPSG:6933`` for EASE-2 global).
    cell_size : tuple of float
        ``(dx, dy)`` spacing of the cell centres, in the CRS units [degrees or m].
    first_centre : tuple of float
        ``(x, y)`` of one cell centre, in the CRS units; every centre is ``first_centre + k * cell_size``.
    """

    name: str
    crs: str
    cell_size: tuple[float, float]
    first_centre: tuple[float, float]

    def offset_cells(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Distance of each point from the nearest cell centre, in cells (max over x and y) [1].

        0 on the grid, up to 0.5 half-way between centres; NaN where a coordinate is NaN.
        """
        lat = np.asarray(lat, dtype="float64")
        lon = np.asarray(lon, dtype="float64")
        if self.crs.upper() in ("EPSG:4326", "OGC:CRS84"):
            x, y = lon, lat
        else:
            from pyproj import Transformer

            x, y = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True).transform(lon, lat)
        dx, dy = self.cell_size
        x0, y0 = self.first_centre
        fx = (np.asarray(x) - x0) / dx
        fy = (np.asarray(y) - y0) / dy
        return np.maximum(np.abs(fx - np.round(fx)), np.abs(fy - np.round(fy)))


@dataclass(frozen=True)
class GranuleThresholds:
    """What a decoded granule of one input product must satisfy (its Great Expectations suite,
    :mod:`smflow.quality.suites`; the ``qc.granule`` section of the catalogue entry).

    Parameters
    ----------
    product : str
        Product name (``smap``, ``era5_land``, ``gldas``, ``c3s``).
    soil_moisture_range : tuple of float
        Physical range of ``soil_moisture`` after the flags are applied [m3 m-3].
    max_fill_fraction : float
        Largest allowed fraction of null ``soil_moisture`` over all ``(location, time)`` cells
        [1]. 1.0 = an empty granule is legitimate.
    min_locations_in_domain : int
        Fewest distinct locations inside the domain (+ margin) [count].
    domain_margin_deg : float
        Margin around the domain edges within which a product's grid points still count as
        inside (about half a native cell) [degrees].
    min_in_domain_fraction : float
        Fraction of the observations that must lie inside the domain (+ margin) [1]. Landing
        granules are whole 5 deg cells (0165 + 0166), which also hold Maui, Oahu and Kauai: 62 %
        of the ERA5-Land points, 67 % of GLDAS and 77 % of SMAP lie on the Big Island; a granule
        of another region or with broken coordinates has (almost) none.
    native_grid : NativeGrid or None
        The grid the product's locations lie on; a granule whose locations are off it (another
        grid, shifted coordinates) is quarantined. None: not checked.
    rationale : str
        Where the numbers come from.
    """

    product: str
    soil_moisture_range: tuple[float, float]
    max_fill_fraction: float
    min_locations_in_domain: int
    domain_margin_deg: float
    min_in_domain_fraction: float = 0.5
    native_grid: NativeGrid | None = None
    rationale: str = ""


@dataclass(frozen=True)
class ArchiveSource:
    """Where the provider's archive holds the product.

    Attributes
    ----------
    client : str
        Archive client kind (key of :data:`smflow.archive.base.ARCHIVE_CLIENTS`).
    collection : str
        The provider's product / collection name as the client knows it.
    order : str
        Name under which smflow asks for it; the product name, unless one product comes in
        several collections (EUMETSAT SOMO25 / SOMO12 for ASCAT L2 SSM).
    """

    client: str
    collection: str
    order: str


@dataclass(frozen=True)
class CatalogEntry:
    """Every fact about one product: one ``smflow/catalog/products/<name>.yaml``.

    Attributes
    ----------
    name : str
        The product's one name.
    title : str
        Product name and version as the provider calls it.
    licence_class : {"open", "internal"}
        ``open``: may be bundled and published; ``internal``: read where it is, never copied
        into the repository or a published artefact (ISMN, EUMETSAT/H SAF, ESA CCI, ...).
    licence, attribution : str
        Licence in one line, and the attribution the provider asks for.
    aliases : tuple of str
        Former names, accepted with a :class:`DeprecationWarning`.
    timeseries : Product or None
        Time-series cell files (``smflow.readers.timeseries``, ``smflow.ingest``).
    native : NativeProduct or None
        Native files (``smflow.readers.native.open_native``); for a product with only cell
        files, the cell-file reader.
    regrid : RegridSpec or None
        Default regridding of native files (``smflow.regrid.native_to_domain``).
    granule_qc : GranuleThresholds or None
        Thresholds of the decoded-granule suite (``smflow.quality.suites``).
    native_qc_family : str or None
        Threshold family of the regridded native field (``smflow.quality.native``).
    archive : tuple of ArchiveSource
        Provider archives (``smflow.archive.reconcile.provider_granules``).
    source_file : str
        The YAML file the entry was read from.
    """

    name: str
    title: str
    licence_class: LicenceClass
    licence: str
    attribution: str
    aliases: tuple[str, ...] = ()
    timeseries: Product | None = None
    native: NativeProduct | None = None
    regrid: RegridSpec | None = None
    granule_qc: GranuleThresholds | None = None
    native_qc_family: str | None = None
    archive: tuple[ArchiveSource, ...] = ()
    source_file: str = ""

    @property
    def redistributable(self) -> bool:
        """May the product's files be bundled and published (licence class ``open``)."""
        return self.licence_class == "open"
