"""Hypothesis-generated corrupt bytes against every native reader and the daily inputs' handlers.

Seeds: one real file per native product (``tests/readers/native/test_native_corruption.py``'s
``FILES``, from ``../shared/data/real``), the format-specification fixtures for the readers
without a real sample (AMSR2 L3, ERA5 netCDF), and the landing-zone granules of SMAP, ERA5-Land,
GLDAS and C3S (cut by the archive stand-in) read by ``smflow.readers.granule.read_granule``
(the product handlers of ``smflow.readers.decode``). Each example damages a copy:

* truncated at a random offset, or replaced by random bytes: a binary file can never be whole
  again, so the reader must raise :class:`~smflow.readers.GranuleError` (a text file cut at a
  line boundary is still a shorter, valid file: it may be read);
* a random span overwritten with random bytes: :class:`~smflow.readers.GranuleError`, or a dataset
  that loads completely.

No other exception type may come out, the error names the file, and the process does not crash:
each example is read in a forked child (as an Airflow task is), so a segfault of a format library
fails the case instead of the session (one was seen in-process during garbage collection after
many damaged netCDF files; see docs/faults.md). Example counts are small (about a minute).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smflow.readers.errors import GranuleError
from tests.readers.native.test_native_corruption import FILES, OPTIONS, SHARED
from tests.readers.native.test_native_fixtures import _amsr2, _era5_nc

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(SHARED is None, reason="../shared/data/real is not available on this machine")]

#: Products whose files are text: a cut at a line boundary leaves a valid, shorter file.
TEXT = {"ismn_stm", "ismn_static_variables", "ismn_metadata", "sm2rain_insitu", "sm2rain_parameters",
        "etopo20_text"}
#: Readers slow on a whole file (a tar of 24 RADOLAN images, the global land mask): fewer examples.
SLOW = {"radolan_rw", "globe_land_mask", "ascat_h119"}
GRANULE_PRODUCTS = ("smap", "era5_land", "gldas", "c3s")

damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 0.999)),
    st.tuples(st.just("random"), st.binary(min_size=0, max_size=4096)),
    # past the first bytes (the signature checks are covered above and by test_native_corruption)
    st.tuples(st.just("overwrite"), st.floats(0.01, 0.999), st.binary(min_size=8, max_size=512)),
)


def _damage(data: bytes, how: tuple) -> bytes:
    kind = how[0]
    if kind == "truncate":
        return data[: int(len(data) * how[1])]
    if kind == "random":
        return how[1]
    start = int(len(data) * how[1])
    return data[:start] + how[2] + data[start + len(how[2]):]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """name -> (seed file, reader: path -> loaded dataset)."""
    from infra.archive_stand_in import ArchiveStandIn
    from smflow.config import Settings
    from smflow.readers.granule import read_granule
    from smflow.readers.native import open_native

    folder = tmp_path_factory.mktemp("seeds")
    out: dict[str, tuple[Path, object]] = {}

    def native(product):
        return lambda path: open_native(path, product, chunks=None, **OPTIONS.get(product, {})).load()

    for product, rel in FILES.items():
        out[product] = (SHARED / rel, native(product))
    out["amsr2_l3_tb"] = (_amsr2(folder / "GW1AM2_20170101_01D_EQMA_L3SGT36LA2220220.h5"),
                          native("amsr2_l3_tb"))
    out["era5_netcdf"] = (_era5_nc(folder / "era5-land_20170101.nc", new_cds=True), native("era5_netcdf"))
    stand_in = ArchiveStandIn(Settings.load())
    for product in GRANULE_PRODUCTS:
        path = stand_in.write_granule(product, "2017-06-01", folder / f"{product}_20170601.nc")
        out[f"granule:{product}"] = (path, lambda p, product=product: read_granule(product, p).load())
    return out


def _read_in_child(read, path: Path) -> tuple[str, str]:
    """Run ``read(path)`` (and a garbage collection) in a forked child, as an Airflow task runs.

    ('read' | 'rejected' | 'other' | 'crash', message): a crash of the format library (a signal)
    is seen here instead of killing the test session, and no library state (open HDF5 files)
    carries over from one damaged file to the next.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(r)
        code, message = 0, ""
        try:
            read(path)
        except GranuleError as exc:
            code, message = 1, str(exc)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            code, message = 2, f"{type(exc).__name__}: {exc}"
        try:
            gc.collect(1)  # the (young) objects of a damaged file are freed here, where a crash shows
        finally:
            os.write(w, message.encode(errors="replace")[:60000])
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "crash", signal.Signals(os.WTERMSIG(status)).name
    return {0: "read", 1: "rejected"}.get(os.WEXITSTATUS(status), "other"), message


def _check(name: str, seed: Path, read, how: tuple, folder: Path) -> str:
    """Read a damaged copy of ``seed``; 'rejected' or 'read'; fail on any other outcome."""
    # A new file each time: HDF5 recognises a file it still has open by its inode, so rewriting
    # one path could read the previous example's cached metadata instead of these bytes.
    folder = Path(tempfile.mkdtemp(dir=folder))
    dest = folder / seed.name
    if name == "etopo20_text":  # the grid needs its latitude and longitude files beside it
        for sibling in ("etopo20lats.gz", "etopo20lons.gz"):
            shutil.copyfile(seed.parent / sibling, folder / sibling)
    original = seed.read_bytes()
    damaged = _damage(original, how)
    dest.write_bytes(damaged)
    outcome, message = _read_in_child(read, dest)
    if outcome == "crash":
        pytest.fail(f"{name}: reading a {how[0]}-damaged copy crashed the process ({message}); kept at {dest}")
    if outcome == "other":
        pytest.fail(f"{name}: {how[0]} damage raised {message} instead of GranuleError")
    if outcome == "rejected":
        assert str(dest) in message or dest.name in message, f"{name}: the error does not name the file: {message}"
        return "rejected"
    if damaged == original:
        return "read"
    if how[0] == "random" or (how[0] == "truncate" and name not in TEXT):
        pytest.fail(f"{name}: a {how[0]} file ({len(damaged)} of {len(original)} bytes) was read as a dataset")
    return "read"


ALL = sorted(FILES) + ["amsr2_l3_tb", "era5_netcdf"] + [f"granule:{p}" for p in GRANULE_PRODUCTS]


@pytest.mark.parametrize("name", ALL)
def test_corrupt_bytes_raise_only_a_granule_error_naming_the_file(name, seeds, tmp_path_factory, fault_table):
    seed, read = seeds[name]
    folder = tmp_path_factory.mktemp("damaged")
    outcomes: list[str] = []
    t0 = time.monotonic()

    @settings(max_examples=3 if name in SLOW else 8, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(how=damage)
    def run(how):
        outcomes.append(_check(name, seed, read, how, folder))

    run()
    read_back = outcomes.count("read")
    fault_table.record(f"{name} reader: {len(outcomes)} corrupt copies ({read_back} overwritten ones still readable)",
                       "rejected with the file named",
                       recovery_s=time.monotonic() - t0)


def test_an_unreadable_hdf5_attribute_is_a_granule_error_and_other_attribute_errors_are_bugs(tmp_path):
    """netCDF4 reports a damaged HDF5 attribute as AttributeError (found by the test above)."""
    from smflow.readers.native.base import reading

    path = tmp_path / "W_XX-EUMETSAT-Darmstadt,damaged.nc"
    with pytest.raises(GranuleError, match="unreadable attribute") as info:
        with reading(path, "read the attributes"):
            raise AttributeError("NetCDF: Can't open HDF5 attribute")
    assert info.value.path == path
    with pytest.raises(AttributeError, match="has no attribute"):
        with reading(path):
            None.values  # noqa: B018 - a programming error must not pass for a damaged file
