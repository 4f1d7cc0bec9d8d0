"""The Airflow REST client of the main command and the tests: :mod:`smflow.operators.airflow_api`
(one client, shared with the MLflow webhook receiver)."""

from smflow.operators.airflow_api import TERMINAL, AirflowAPIError, AirflowClient

__all__ = ["TERMINAL", "AirflowAPIError", "AirflowClient"]
