"""The fetch layer's own checks, on real granules: day of the contents, Retry-After, provenance records."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from smflow.archive.base import UnexpectedGranule, retry_after_seconds
from smflow.archive.fetch import (ProviderGranule, check_granule_day, is_current, provider_source)

DAY = date(2018, 6, 1)


@pytest.fixture(scope="module")
def smap_granule(tmp_path_factory):
    from infra.archive_stand_in import ArchiveStandIn

    dest = tmp_path_factory.mktemp("granules") / "smap_20180601.nc"
    return ArchiveStandIn().write_granule("smap", DAY, dest)


def test_a_granule_of_the_day_passes_and_one_of_another_day_is_refused(smap_granule):
    check_granule_day("smap", DAY, smap_granule)
    with pytest.raises(UnexpectedGranule, match=r"smap for 2018-06-02 holds data of 2018-06-01"):
        check_granule_day("smap", DAY + timedelta(days=1), smap_granule, source="https://x/smap_20180601.nc")


def test_a_file_that_is_not_netcdf_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "smap_20180601.nc"
    bad.write_bytes(b"<html>maintenance</html>")
    with pytest.raises(UnexpectedGranule, match="not a readable netCDF granule"):
        check_granule_day("smap", DAY, bad, source="https://provider/smap_20180601.nc")


def test_retry_after_in_seconds_or_as_an_http_date():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    assert 100 < retry_after_seconds(later) <= 120


def test_the_catalogue_names_a_provider_for_every_input_of_the_main_pipeline():
    from smflow.catalog import pipeline

    kinds = {p: provider_source(p).client for p in pipeline("daily_soil_moisture").inputs}
    assert kinds == {"smap": "cmr", "gldas": "cmr", "era5_land": "cds", "c3s": "cds"}
    assert provider_source("cgls_ssm_1km") is None


def _granule(**kw) -> ProviderGranule:
    values = dict(product="smap", day=DAY, provider="cmr", collection="SPL3SMP", version="009",
                  granule_id="G1-LOCAL", name="smap_20180601.nc", url="http://127.0.0.1/data/SPL3SMP/smap_20180601.nc",
                  size=10, checksum="ab" * 32, checksum_algorithm="SHA-256", revision="1", record={"a": 1})
    values.update(kw)
    return ProviderGranule(**values)


def test_provider_granule_round_trips_and_its_metadata_is_what_is_compared():
    g = _granule()
    assert ProviderGranule.from_dict(g.to_dict()) == g
    assert "record" not in g.provenance() and g.provenance()["granule_id"] == "G1-LOCAL"
    landed = {**g.metadata(), "sha256": "00"}
    assert all(isinstance(v, str) for v in landed.values())
    assert is_current(landed, g)
    assert not is_current(None, g)
    assert not is_current(landed, _granule(revision="2"))            # reprocessed: new revision
    assert not is_current(landed, _granule(checksum="cd" * 32))       # reprocessed: new bytes
    cds = _granule(provider="cds", checksum=None, checksum_algorithm=None, revision=None, granule_id="ds:20180601")
    assert is_current(cds.metadata(), cds)                            # no checksum: current once landed
