"""smflow.dates.as_date: the one conversion of a day-like value, used by every module that takes a day."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from smflow.dates import as_date

JUNE_1 = date(2018, 6, 1)


@pytest.mark.parametrize(
    "value",
    [
        JUNE_1,
        "2018-06-01",
        "20180601",  # as in the S3 keys
        "2018-06-01T00:00:00+00:00",  # an Airflow logical date through XCom
        "2018-06-01T23:00:00-05:00",  # the calendar day of the value's own time zone
        datetime(2018, 6, 1, 23, 59),
        datetime(2018, 6, 1, 23, tzinfo=timezone(timedelta(hours=-5))),
        np.datetime64("2018-06-01T12", "h"),
        np.datetime64("2018-06-01T18:30:00.000000000"),
        pd.Timestamp("2018-06-01 06:00", tz="UTC"),
    ],
)
def test_every_spelling_of_a_day_gives_the_calendar_day(value) -> None:
    day = as_date(value)
    assert day == JUNE_1
    assert type(day) is date  # never a datetime (a datetime compares unequal to its date)


@pytest.mark.parametrize("value", [None, "", "not a day", pd.NaT, np.datetime64("NaT"), 20180601, 1.5])
def test_what_is_not_a_day_is_refused_with_the_value_named(value) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(repr(value))} \(\w+\) is not a day; pass a date, .*'2018-06-01'"):
        as_date(value)


def test_the_modules_that_take_a_day_share_it() -> None:
    """The former copies (landing, store, validation, CF writer) are this one function now."""
    from smflow.publish import cf
    from smflow.quality import native, validate

    assert cf.product_day is as_date and validate.as_date is as_date and native.as_date is as_date
