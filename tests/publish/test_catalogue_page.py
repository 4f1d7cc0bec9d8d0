"""The public catalogue, as an anonymous user meets it: the page in a real headless browser, and
the STAC documents through a standard STAC client and xarray over HTTP, with no credentials.

Two synthetic days are published to the stack's products bucket (the one bucket anonymous callers
may read) and withdrawn again at the end. The browser is Debian's ``chromium``, driven by
playwright (``infra/test.sh`` installs it with apt-get when missing); without it the test skips,
except on CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import shutil
from pathlib import Path

import pytest

import synthetic
from smflow.publish.publisher import Publisher, catalogue_page_url, item_key
from smflow.publish.stac import asset_s3_uri

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("SMFLOW_CHROMIUM", "/usr/bin/chromium"))
#: Days far from every other test's (the bucket is the stack's real products bucket).
DAYS = (dt.date(2000, 1, 1), dt.date(2000, 1, 2))
N_QUICKLOOKS = 6


def _browser_or_skip():
    """playwright's sync API, or skip (fail on CI) naming what is missing."""
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (test extra: pip install -e '.[test]')")
        sync_playwright = None
    if not CHROMIUM.is_file() and not shutil.which(str(CHROMIUM)):
        missing.append(f"{CHROMIUM} (Debian: apt-get install chromium; infra/test.sh does it)")
    if missing:
        reason = "no headless browser: missing " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " -- CI must run the browser test", pytrace=False)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def sync_playwright():
    """playwright's ``sync_playwright`` (checked before anything is published)."""
    return _browser_or_skip()


@pytest.fixture(scope="module")
def published_days(stack, s3_client):
    """Two days published to the stack's products bucket; withdrawn afterwards.

    Published with a public base URL that names the gateway as ``localhost``
    (``SMFLOW_PUBLIC_BASE_URL``, as behind a proxy), while the page is loaded from ``127.0.0.1``:
    the page must follow the STAC links whatever host name serves it.
    """
    from smflow.s3 import list_keys

    public = f"{stack.s3_endpoint_url.replace('127.0.0.1', 'localhost')}/{stack.products_bucket}"
    publisher = Publisher(dataclasses.replace(stack, public_base_url=public), s3=s3_client)
    cards_before = set(list_keys(s3_client, publisher.bucket, "models/", empty_if_no_bucket=True))
    for n, day in enumerate(DAYS):
        publisher.publish_day(synthetic.daily_product(day, seed=n), day, synthetic.provenance(day))
    yield publisher
    default = Publisher(stack, s3=s3_client)  # the collection left behind names the default URLs again
    for day in DAYS:
        default.withdraw_day(day)
    for key in set(list_keys(s3_client, publisher.bucket, "models/")) - cards_before:  # the synthetic models' cards
        s3_client.delete_object(Bucket=publisher.bucket, Key=key)


def test_catalogue_page_lists_the_days_and_opens_an_item_with_its_quicklooks(sync_playwright, published_days,
                                                                              tmp_path):
    publisher = published_days
    url = catalogue_page_url(dataclasses.replace(publisher.settings, public_base_url=None))  # 127.0.0.1
    assert "localhost" in publisher.href("") and "localhost" not in url
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})  # no credentials of any kind
            page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
            page.on("response", lambda response: failed.append(f"{response.url}: HTTP {response.status}")
                    if response.status >= 400 else None)
            page.on("pageerror", lambda error: failed.append(f"script error: {error}"))
            page.goto(url)
            page.wait_for_selector(f"#day-{DAYS[-1]}", timeout=15_000)
            listed = page.locator("#days a").all_inner_texts()
            assert {str(day) for day in DAYS} <= set(listed), listed

            page.click(f"#day-{DAYS[-1]}")
            page.wait_for_selector("img.quicklook", timeout=15_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('img.quicklook')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=15_000)
            images = page.eval_on_selector_all(
                "img.quicklook", "els => els.map(i => [i.dataset.asset, i.naturalWidth, i.currentSrc])")
            assert len(images) == N_QUICKLOOKS and all(width > 0 for _, width, _ in images), images
            assert page.url.endswith(f"#{DAYS[-1]}")
            assert page.locator("#item h2").inner_text().endswith(str(DAYS[-1]))
            # every file link of the item downloads, anonymously, the bytes its checksum names
            item = page.request.get(publisher.href(item_key(DAYS[-1]))).json()
            for key, asset in item["assets"].items():
                link = page.locator(f'tr[data-asset="{key}"] a')  # mapped onto the page's own host
                assert link.get_attribute("href") == asset["href"].replace(publisher.href(""), url.rsplit("/", 1)[0] + "/")
                body = page.request.get(asset["href"]).body()
                assert "1220" + hashlib.sha256(body).hexdigest() == asset["file:checksum"], key
            assert page.locator('a:has-text("smflow-tc-merging v3")').count() == 1  # the model card link
            page.screenshot(path=str(tmp_path / "catalogue.png"), full_page=False)
        finally:
            browser.close()
    assert not failed, failed
    assert (tmp_path / "catalogue.png").stat().st_size > 10_000


def test_a_stac_client_and_xarray_read_the_catalogue_over_http_without_credentials(published_days):
    """pystac walks catalog -> collection -> items by their public hrefs; xarray opens an asset's
    href (h5netcdf over HTTP); the ``s3`` alternate names the same object."""
    import pystac
    import xarray as xr

    publisher = published_days
    catalog = pystac.Catalog.from_file(publisher.href("stac/catalog.json"))
    items = {item.id: item for item in catalog.get_items(recursive=True)}
    assert {f"smflow-daily-{day:%Y%m%d}" for day in DAYS} <= set(items)
    item = items[f"smflow-daily-{DAYS[0]:%Y%m%d}"]
    asset = item.assets["merged-sm"]
    assert asset.href.startswith(("http://", "https://"))
    with xr.open_dataset(asset.href, engine="h5netcdf") as merged:  # as docs/user-guide.md shows it
        assert merged["soil_moisture"].attrs["units"] == "m3 m-3"
        assert int(merged["soil_moisture"].notnull().sum()) > 0
    key = asset_s3_uri(asset.to_dict()).split("/", 3)[3]
    assert publisher.href(key) == asset.href
    assert {link.rel for link in item.links} >= {"self", "root", "parent", "collection", "smflow:model"}


def test_the_main_job_prints_the_catalogue_address_and_it_answers_without_credentials(stack, published_days,
                                                                                   tmp_path):
    import urllib.request

    from infra.main import addresses

    lines = addresses(stack, "http://127.0.0.1:8080", tmp_path)
    catalogue = [line for line in lines if line.startswith("Catalogue:")]
    assert len(catalogue) == 1, lines
    url = catalogue[0].split()[1]
    assert url == catalogue_page_url(stack) == f"{stack.s3_endpoint_url}/{stack.products_bucket}/index.html"
    with urllib.request.urlopen(url, timeout=10) as response:  # no credentials
        assert response.headers["Content-Type"].startswith("text/html")
        assert b"stac/catalog.json" in response.read()
    assert not any(stack.s3_secret_key in line for line in lines)
