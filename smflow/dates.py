"""UTC days: the one conversion of a day-like value to :class:`datetime.date`.

Every module that takes a day (the landing zone, the store, validation, publishing, the operators
that receive ISO strings through XCom) converts it with :func:`as_date`, so all of them accept the
same spellings and refuse the same values with the same message.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeAlias

import numpy as np
import pandas as pd

#: What :func:`as_date` accepts.
DayLike: TypeAlias = date | datetime | str | np.datetime64 | pd.Timestamp

__all__ = ["DayLike", "as_date"]


def as_date(day: DayLike) -> date:
    """``day`` as a :class:`datetime.date`.

    Parameters
    ----------
    day : date, datetime, str, numpy.datetime64 or pandas.Timestamp
        A date is returned as it is; a datetime or timestamp gives its calendar day (in its own
        time zone, if it has one: ``2018-06-01T23:00-05:00`` is 2018-06-01); a string may be
        ISO 8601 (``2018-06-01``, ``2018-06-01T00:00:00+00:00``, as Airflow passes logical
        dates) or ``YYYYMMDD`` (as in the S3 keys).

    Returns
    -------
    datetime.date
        The calendar day.

    Raises
    ------
    ValueError
        If ``day`` is not a time (``None``, ``NaT``, an unparseable string, a number).
    """
    if isinstance(day, date) and not isinstance(day, datetime):
        return day
    stamp = pd.NaT
    if isinstance(day, datetime | str | np.datetime64):  # pd.Timestamp and pd.NaT are datetimes
        try:
            stamp = pd.Timestamp(day)
        except (ValueError, TypeError):
            pass  # refused below, with the value named
    if pd.isna(stamp):
        raise ValueError(
            f"{day!r} ({type(day).__name__}) is not a day; pass a date, a datetime, a numpy/pandas "
            "time or an ISO string such as '2018-06-01' (or '20180601')."
        )
    return stamp.date()
