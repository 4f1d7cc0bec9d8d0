"""Archive credentials: from the environment or an Airflow connection, never from code or logs.

The secret values are held in :class:`Credentials`, whose ``repr`` hides them, so that a
credential object that ends up in a log line or an exception message does not leak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    """A bearer token, or a user name and password (secrets hidden from ``repr``).

    :param token: bearer token (Earthdata Login user token, ...).
    :param username: user name for HTTP basic auth (or a CDS UID).
    :param password: password for HTTP basic auth (or a CDS API key).
    :param source: where they came from (``"env:EARTHDATA_TOKEN"``, ``"conn:earthdata"``), for logs.
    """

    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    source: str = ""

    @property
    def empty(self) -> bool:
        return not self.token and not (self.username and self.password)

    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer ...`` when a token is set, else no header."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def basic(self) -> tuple[str, str] | None:
        """``(username, password)`` for ``requests`` basic auth, when no token is set."""
        if self.token or not (self.username and self.password):
            return None
        return (self.username, self.password)


def get_connection(conn_id: str):
    """The Airflow connection ``conn_id`` (secrets backends and ``AIRFLOW_CONN_<ID>`` included).

    :raises smflow.archive.base.CredentialsError: naming the connection and how to define it,
        when it does not exist.
    """
    from airflow.sdk import BaseHook

    from smflow.archive.base import CredentialsError

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or the task SDK's own error
        if "not defined" not in str(exc) and "isn't defined" not in str(exc) and "not found" not in str(exc).lower():
            raise
        raise CredentialsError(
            f"the Airflow connection {conn_id!r} is not defined: create it (Admin > Connections, "
            f"`airflow connections add {conn_id} ...`) or set AIRFLOW_CONN_{conn_id.upper()}; its host is "
            "the provider's API URL and its password the access token (see docs/providers.md)."
        ) from None


def from_airflow_connection(conn_id: str) -> Credentials:
    """Credentials of the Airflow connection ``conn_id``.

    The connection's ``password`` is the secret; with a ``login`` it is a user/password pair,
    without one (or with ``extra`` ``{"token": ...}``) it is a bearer token. Looked up through
    Airflow's secrets backends (``AIRFLOW_CONN_<ID>`` environment variables included).

    :raises smflow.archive.base.CredentialsError: when the connection does not exist.
    """
    conn = get_connection(conn_id)
    extra = conn.extra_dejson or {}
    token = extra.get("token")
    if token:
        return Credentials(token=token, source=f"conn:{conn_id}")
    if conn.login:
        return Credentials(username=conn.login, password=conn.password, source=f"conn:{conn_id}")
    return Credentials(token=conn.password or None, source=f"conn:{conn_id}")


def resolve(
    *,
    conn_id: str | None = None,
    token_env: str | None = None,
    username_env: str | None = None,
    password_env: str | None = None,
) -> Credentials:
    """Credentials from the Airflow connection ``conn_id`` if given, else from the environment.

    :param conn_id: Airflow connection id; when set it wins over the environment.
    :param token_env: environment variable holding a bearer token (e.g. ``EARTHDATA_TOKEN``).
    :param username_env, password_env: environment variables holding a user/password pair.
    :returns: possibly empty :class:`Credentials` (check ``.empty``).
    """
    if conn_id:
        return from_airflow_connection(conn_id)
    if token_env and os.environ.get(token_env):
        return Credentials(token=os.environ[token_env], source=f"env:{token_env}")
    if username_env and password_env and os.environ.get(username_env) and os.environ.get(password_env):
        return Credentials(username=os.environ[username_env], password=os.environ[password_env],
                           source=f"env:{username_env}")
    return Credentials(source="none")


def connection_host(conn_id: str | None) -> str | None:
    """The ``host`` of the Airflow connection ``conn_id`` (an archive's URL or host name), if set."""
    if not conn_id:
        return None
    conn = get_connection(conn_id)
    host = conn.host or None
    if host and conn.port and "://" in host and host.count(":") == 1:
        scheme, _, rest = host.partition("://")
        head, slash, path = rest.partition("/")
        host = f"{scheme}://{head}:{conn.port}{slash}{path}"
    return host
