"""infra/stack.py's CeleryExecutor option: airflow.cfg, broker isolation between stacks, clear errors.

Pure configuration (no daemon): the e2e run of the daily DAG on a Celery stack with a real broker
and real workers is ``tests/e2e/test_daily_dag_celery.py``.
"""

from __future__ import annotations

import configparser
import importlib.util
import socket
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack_module():
    spec = importlib.util.spec_from_file_location("smflow_stack_script", REPO_ROOT / "infra" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _config(stack_module, monkeypatch, home: Path, **env: str):
    for key in ("SMFLOW_AIRFLOW_EXECUTOR", "SMFLOW_CELERY_BROKER_URL", "SMFLOW_CELERY_LIGHT_CONCURRENCY",
                "SMFLOW_CELERY_HEAVY_CONCURRENCY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SMFLOW_HOME", str(home))
    return stack_module.Config.load()


def _cfg(stack_module, cfg, db) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(stack_module.airflow_cfg_text(cfg, db))
    return parser


def _postgres(stack_module, cfg):
    return stack_module.Database(
        backend="postgresql", server_url="postgresql://postgres@127.0.0.1:5432", mlflow_uri="unused",
        airflow_backend="postgresql", airflow_conn=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{cfg.airflow_db_name}",
        airflow_conn_async="postgresql+asyncpg://unused", airflow_db=cfg.airflow_db_name)


def test_local_is_the_default_and_has_no_workers(stack_module, monkeypatch, tmp_path):
    cfg = _config(stack_module, monkeypatch, tmp_path / "a")
    assert cfg.executor_class == "smflow.operators.executor.PreloadingLocalExecutor" and not cfg.celery
    assert cfg.airflow_components == stack_module.AIRFLOW_COMPONENTS
    parser = _cfg(stack_module, cfg, _postgres(stack_module, cfg))
    assert not parser.has_section("celery") and not parser.has_section("operators")


def test_celery_stacks_on_one_redis_never_share_a_queue(stack_module, monkeypatch, tmp_path):
    first = _config(stack_module, monkeypatch, tmp_path / "a", SMFLOW_AIRFLOW_EXECUTOR="celery")
    second = _config(stack_module, monkeypatch, tmp_path / "b", SMFLOW_AIRFLOW_EXECUTOR="celery")
    assert first.celery and first.executor_class == "CeleryExecutor"
    assert first.airflow_components[-2:] == ("worker-light", "worker-heavy")
    parsers = [_cfg(stack_module, cfg, _postgres(stack_module, cfg)) for cfg in (first, second)]
    prefixes = {p.get("celery_broker_transport_options", "global_keyprefix") for p in parsers}
    assert len(prefixes) == 2, prefixes  # distinct key prefixes, whatever database each takes
    for parser, cfg in zip(parsers, (first, second)):
        assert parser.get("celery", "broker_url").startswith("redis://127.0.0.1:6379/")
        # results in the stack's PostgreSQL (the Airflow metadata database)
        assert parser.get("celery", "result_backend") == f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{cfg.airflow_db_name}"
        assert parser.get("operators", "default_queue") == "heavy"
        assert parser.get("celery", "celery_config_options") == "smflow.operators.celery_config.CELERY_CONFIG"
    # one worker per queue with its concurrency; no log server (port 8793 would collide between stacks)
    argv = stack_module._component_argv(first, "worker-heavy")
    assert argv[argv.index("--queues") + 1] == "heavy" and argv[argv.index("--concurrency") + 1] == "1"
    assert "--skip-serve-logs" in argv


def test_broker_url_and_concurrency_are_configurable(stack_module, monkeypatch, tmp_path):
    cfg = _config(stack_module, monkeypatch, tmp_path / "a", SMFLOW_AIRFLOW_EXECUTOR="celery",
                  SMFLOW_CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/smflow",
                  SMFLOW_CELERY_LIGHT_CONCURRENCY="3")
    parser = _cfg(stack_module, cfg, _postgres(stack_module, cfg))
    assert parser.get("celery", "broker_url") == "amqp://guest:guest@127.0.0.1:5672/smflow"
    assert not parser.has_section("celery_broker_transport_options")  # RabbitMQ: the vhost separates stacks
    argv = stack_module._component_argv(cfg, "worker-light")
    assert argv[argv.index("--concurrency") + 1] == "3"


def test_a_broker_that_does_not_answer_is_named_with_what_to_do(stack_module, monkeypatch, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = _config(stack_module, monkeypatch, tmp_path / "a", SMFLOW_AIRFLOW_EXECUTOR="celery",
                  SMFLOW_CELERY_BROKER_URL=f"redis://:secret@127.0.0.1:{port}/0")
    with pytest.raises(stack_module.StackError, match="SMFLOW_CELERY_BROKER_URL") as err:
        stack_module.require_broker(cfg)
    assert "secret" not in str(err.value) and str(port) in str(err.value)
    cfg = _config(stack_module, monkeypatch, tmp_path / "a", SMFLOW_AIRFLOW_EXECUTOR="celery",
                  SMFLOW_CELERY_BROKER_URL="kafka://127.0.0.1:9092")
    with pytest.raises(stack_module.StackError, match="redis://"):
        stack_module.require_broker(cfg)
