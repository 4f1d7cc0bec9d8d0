"""smflow: daily merged soil moisture, SM2RAIN rainfall and triple-collocation diagnostics."""

# pyproj is loaded before anything can load eccodes (cfgrib, which xarray imports whenever it lists
# its engines): eccodes' bundled libraries, loaded first, leave PROJ without its database
# ("proj_create: no database context specified") for the rest of the process.
import pyproj  # noqa: F401
