"""Product facts: one frozen record per input product, and nothing else.

Every fact a reader, the landing zone or the regridder needs about a product lives here, the way
satpy keeps a reader's variable names, scale factors, fills and flag bits in one place: where the
cell files are, their netCDF layout, the variable and its units, how to convert to the names and
units of the system (``soil_moisture`` in m3 m-3, ``degree_of_saturation`` in percent), which
values are valid, which quality flags reject an observation, when in the day the product is
sampled, how far apart its samples are, and whether we may redistribute it.

The values were checked against the real files in ``../shared/data/real/hawaii_timeseries``
(MANIFEST section 3) and against the product documentation cited per product.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

Layout = Literal["orthogonal", "contiguous_ragged", "indexed_ragged"]
FlagTest = Literal["bits_clear", "equals", "in_set"]

#: Source repository of every hawaii_timeseries cell file (MANIFEST section 3).
QA4SM_TESTDATA = "awst-austria/qa4sm-testdata @ 4b4799e58fce"


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
    """Facts about one input product.

    Attributes
    ----------
    name : str
        Name used everywhere in the system (``smap``, ``era5_land``, ...).
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
        May be bundled in this repository and published (NASA, Copernicus: yes).
    standard_name, long_name : str
        CF attributes of ``output_name``.
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
    auxiliary: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    keep_variables: tuple[str, ...] = ()
    nominal_time: str = ""
    native_resolution_m: float = 0.0
    licence: str = ""
    attribution: str = ""
    redistributable: bool = False
    standard_name: str | None = "volume_fraction_of_condensed_water_in_soil"
    long_name: str = "volumetric soil moisture"

    @property
    def regrid_radius_m(self) -> float:
        """Radius of influence [m] for nearest-neighbour regridding.

        0.75 of the sample spacing: just beyond the half diagonal (0.707) of a sample's cell, so
        every domain cell inside the product's footprint finds a sample and none borrows one
        from beyond the next.
        """
        return 0.75 * self.native_resolution_m

    @property
    def flag_variables(self) -> tuple[str, ...]:
        """Raw flag variables (each once, in rule order)."""
        return tuple(dict.fromkeys(rule.variable for rule in self.flag_rules))


SMAP = Product(
    name="smap",
    title="NASA SMAP L3 Radiometer Global Daily 36 km EASE-Grid Soil Moisture (SPL3SMP) v9, AM+PM",
    folder="SMAP_L3_V9_AM_PM",
    cells=("0165", "0166"),
    layout="indexed_ragged",
    variable="soil_moisture",
    output_name="soil_moisture",
    source_units="cm**3/cm**3",
    units="m3 m-3",
    conversion_factor=1.0,
    valid_range=(0.02, 0.5),
    fill_value=-9999.0,
    # SPL3SMP product specification, retrieval_qual_flag: bit 0 "recommended quality"
    # 0 = yes, 1 = no; bits 1/2/3 likewise 0 = attempted / succeeded / FT succeeded. The file's
    # flag_meanings name the bits by their "good" meaning, but a SET bit means "not". Measured in
    # the Hawaii cells: 8 = only FT failure (recommended), 9 = not recommended, 13 = retrieval
    # failed, 15 = not attempted.
    #
    # Why bit 2 (retrieval succeeded) and not bit 0 (recommended quality): over the Big Island the
    # vegetation water content exceeds the 5 kg m-2 "recommended" threshold almost everywhere, and
    # bit 0 keeps 502 observations at a single grid point in 2017-2018 (12 cells), which leaves
    # triple collocation nothing to work with. With bit 2 clear and the 0.02-0.5 valid range,
    # 4,171 observations at 8 points remain; triple collocation then measures SMAP's larger error
    # over dense vegetation and the least-squares weights down-weight it accordingly, instead of a
    # fixed flag discarding it (Ming et al. 2022, section 3.2).
    flag_rules=(
        FlagRule(
            "retrieval_qual_flag",
            "bits_clear",
            value=0b100,
            meaning="bit 2 clear: soil-moisture retrieval succeeded (not-recommended quality kept; "
            "TC weights it)",
        ),
    ),
    auxiliary=MappingProxyType({"Overpass": "Overpass"}),
    keep_variables=(
        "soil_moisture",
        "soil_moisture_error",
        "retrieval_qual_flag",
        "freeze_thaw_fraction",
        "surface_flag",
        "surface_temperature",
        "vegetation_opacity",
        "vegetation_water_content",
        "landcover_class",
        "static_water_body_fraction",
        "Overpass",
    ),
    nominal_time="two overpasses: AM (descending, 06:00 local) and PM (ascending, 18:00 local); "
    "over Hawaii about 16 UTC and 04 UTC",
    native_resolution_m=36_000.0,
    licence="NASA EOSDIS data policy: open, no restriction on use or redistribution",
    attribution="O'Neill, P. E., et al. (2023). SMAP L3 Radiometer Global Daily 36 km EASE-Grid "
    "Soil Moisture, Version 9. NASA NSIDC DAAC. https://doi.org/10.5067/K7Y2D8QQVZ4L",
    redistributable=True,
    long_name="SMAP L3 radiometer (DCA) volumetric soil moisture, 0-5 cm",
)

ERA5_LAND = Product(
    name="era5_land",
    title="ECMWF ERA5-Land hourly, swvl1 sampled daily at 06:00 UTC (QA4SM V20190904)",
    folder="ERA5_LAND_V20190904",
    cells=("0165", "0166"),
    layout="orthogonal",
    variable="swvl1",
    output_name="soil_moisture",
    source_units="m**3 m**-3",
    units="m3 m-3",
    conversion_factor=1.0,
    valid_range=(0.0, 1.0),
    fill_value=None,
    flag_rules=(),
    keep_variables=("swvl1", "stl1"),
    nominal_time="06:00 UTC",
    native_resolution_m=11_132.0,  # 0.1 deg of latitude
    licence="Copernicus licence (free use and redistribution with attribution)",
    attribution="Contains modified Copernicus Climate Change Service information 2026. "
    "Munoz Sabater, J. (2019): ERA5-Land hourly data from 1950 to present. C3S CDS. "
    "https://doi.org/10.24381/cds.e2161bac",
    redistributable=True,
    long_name="ERA5-Land volumetric soil water, layer 1 (0-7 cm)",
)

GLDAS = Product(
    name="gldas",
    title="NASA GLDAS-2.1 Noah Land Surface Model L4 3-hourly 0.25 deg (GLDAS_NOAH025_3H 2.1)",
    folder="GLDAS_NOAH025_3H_2_1",
    cells=("0165", "0166"),
    layout="orthogonal",
    variable="SoilMoi0_10cm_inst",
    output_name="soil_moisture",
    source_units="kg m-2",
    units="m3 m-3",
    # kg m-2 of water in the 0-10 cm layer = mm of water in 100 mm of soil.
    conversion_factor=1.0 / 100.0,
    valid_range=(0.0, 1.0),
    fill_value=None,
    flag_rules=(),
    auxiliary=MappingProxyType({"SoilTMP0_10cm_inst": "soil_temperature"}),
    keep_variables=("SoilMoi0_10cm_inst", "SoilTMP0_10cm_inst"),
    nominal_time="3-hourly instantaneous, 00:00 ... 21:00 UTC",
    native_resolution_m=27_830.0,  # 0.25 deg of latitude
    licence="NASA EOSDIS data policy: open, no restriction on use or redistribution",
    attribution="Beaudoing, H. and M. Rodell, NASA/GSFC/HSL (2020), GLDAS Noah Land Surface "
    "Model L4 3 hourly 0.25 x 0.25 degree V2.1, Greenbelt, Maryland, USA, Goddard Earth "
    "Sciences Data and Information Services Center (GES DISC). "
    "https://doi.org/10.5067/E7TYRXPJKWOQ",
    redistributable=True,
    long_name="GLDAS Noah volumetric soil moisture, 0-10 cm",
)

C3S = Product(
    name="c3s",
    title="Copernicus C3S Soil Moisture COMBINED daily TCDR v202505 (0.25 deg)",
    folder="C3S_SM_COMBINED_V202505",
    cells=("0165",),  # cell 0166 had no valid data and is not in the source
    layout="orthogonal",
    variable="sm",
    output_name="soil_moisture",
    source_units="m3 m-3",
    units="m3 m-3",
    conversion_factor=1.0,
    valid_range=(0.0, 1.0),
    fill_value=None,
    # The attribute lists flag_values 1..8, but the stored values are bit sums (ESA CCI
    # convention). Measured: sm is valid exactly where flag == 0.
    flag_rules=(FlagRule("flag", "equals", value=0, meaning="flag == 0: no quality issue"),),
    keep_variables=("sm", "sm_uncertainty", "flag", "freqbandID", "dnflag", "mode", "sensor", "t0"),
    nominal_time="daily, time stamp 00:00 UTC (observation time in t0)",
    native_resolution_m=27_830.0,
    licence="Copernicus licence (free use and redistribution with attribution)",
    attribution="Contains modified Copernicus Climate Change Service information 2026. "
    "C3S Soil moisture gridded data from 1978 to present, COMBINED TCDR v202505. "
    "https://doi.org/10.24381/cds.d7782f18",
    redistributable=True,
    long_name="C3S SM COMBINED volumetric soil moisture",
)

ASCAT_H119 = Product(
    name="ascat_h119",
    title="H SAF Metop ASCAT Surface Soil Moisture CDR v7 12.5 km sampling (H119)",
    folder="ASCAT_H119/data",
    cells=("0165",),
    layout="contiguous_ragged",
    variable="sm",
    output_name="degree_of_saturation",
    source_units="percentage",
    units="percent",
    conversion_factor=1.0,
    valid_range=(0.0, 100.0),
    fill_value=65535.0,  # missing_value of the packed uint16 values
    flag_rules=(
        # bits 0-3 set: soil moisture was set to NaN (below -25 %, above 125 %, backscatter or
        # model parameter not usable); bits 4-6 are reserved.
        FlagRule("proc_flag", "bits_clear", value=0b1111, meaning="no processing flag"),
        # surface state: 0 unknown, 1 unfrozen are usable; frozen, melting/water, ice are not.
        FlagRule("ssf", "in_set", values=(0, 1), meaning="surface state unknown or unfrozen"),
    ),
    keep_variables=("sm", "sm_noise", "proc_flag", "ssf", "conf_flag", "corr_flag", "dir", "sat_id"),
    nominal_time="irregular (Metop overpasses about 09:30 and 21:30 local solar time)",
    native_resolution_m=12_500.0,
    licence="EUMETSAT H SAF data policy: free, internal use here; do not redistribute raw files",
    attribution="Copyright EUMETSAT (H SAF), ASCAT SSM CDR H119",
    redistributable=False,
    standard_name=None,  # no CF standard name for a degree of saturation
    long_name="ASCAT surface soil moisture, degree of saturation",
)

#: Every product the system knows, by name.
PRODUCTS: Mapping[str, Product] = MappingProxyType(
    {p.name: p for p in (SMAP, ERA5_LAND, GLDAS, C3S, ASCAT_H119)}
)

#: Products merged into the daily product, in the merged triplet order.
MERGED_TRIPLET: tuple[str, str, str] = ("smap", "era5_land", "gldas")


def get_product(product: str | Product) -> Product:
    """The :class:`Product` called ``product`` (a Product is returned as is)."""
    if isinstance(product, Product):
        return product
    try:
        return PRODUCTS[product]
    except KeyError:
        raise KeyError(
            f"Unknown product {product!r}; known products are {sorted(PRODUCTS)}."
        ) from None
