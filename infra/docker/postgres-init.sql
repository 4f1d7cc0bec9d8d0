-- One PostgreSQL server, one database per stateful service (names as in infra/stack.py).
CREATE DATABASE smflow_airflow;
CREATE DATABASE smflow_mlflow;
CREATE DATABASE smflow_mlflow_auth;  -- the MLflow basic-auth users
