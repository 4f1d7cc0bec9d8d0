"""The stack's doors, tried as an outsider and as each service identity (docs/security.md).

Against the running stack of the fixtures (``stack``: S3 + MLflow): MLflow answers no REST call
without a user; S3 serves the products bucket (the public catalogue) to anonymous readers, read
only, and nothing else; the filer and the volume server serve nothing anonymously; each S3 identity
can do its job and nothing more (the pipelines cannot delete or overwrite the landing zone nor
touch MLflow's bucket, MLflow's identity reads no data bucket); every file of the state home
that holds a secret is 0600 and no secret value is in a daemon log.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from smflow.s3 import list_keys

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

#: REST calls of each MLflow surface: registry, tracking (runs), artifact proxy.
MLFLOW_CALLS = {
    "registry search": ("GET", "/api/2.0/mlflow/registered-models/search?max_results=5", None),
    "runs search": ("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"], "max_results": 5}),
    "experiments search (UI route)": ("GET", "/ajax-api/2.0/mlflow/experiments/search?max_results=5", None),
    "artifacts list": ("GET", "/api/2.0/mlflow-artifacts/artifacts?path=", None),
}


def _stack_module():
    sys.path.insert(0, str(REPO_ROOT))
    from infra import stack as stack_module

    return stack_module


def _http(method: str, url: str, body: dict | None = None, auth: tuple[str, str] | None = None,
          headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    elif data is not None:
        request.data = data
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _identities(stack) -> dict[str, dict[str, str]]:
    return json.loads((stack.home / "s3" / "identities.json").read_text())


def _client(stack, keys: dict[str, str]):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=stack.s3_endpoint_url, aws_access_key_id=keys["access_key"],
                        aws_secret_access_key=keys["secret_key"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def _denied(call) -> str:
    """The S3 error code of ``call()``, which must fail."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as excinfo:
        call()
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def landed(stack, s3_client):
    """An object in the landing zone (chunked: 200 kB), put by the admin; removed at the end."""
    key = f"security-probe/{uuid.uuid4().hex}.nc"
    body = os.urandom(200_000)
    s3_client.put_object(Bucket=stack.landing_bucket, Key=key, Body=body)
    yield key, body
    s3_client.delete_object(Bucket=stack.landing_bucket, Key=key)


# --- MLflow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MLFLOW_CALLS)
def test_mlflow_refuses_anonymous_and_wrong_password_and_serves_the_stack_user(stack, name):
    method, path, body = MLFLOW_CALLS[name]
    url = stack.mlflow_tracking_uri + path
    assert stack.mlflow_username and stack.mlflow_password, "stack.env names no MLflow user"
    assert _http(method, url, body)[0] == 401
    assert _http(method, url, body, auth=(stack.mlflow_username, "not-the-password"))[0] == 401
    status, answer = _http(method, url, body, auth=(stack.mlflow_username, stack.mlflow_password))
    assert status == 200, answer[:300]


def test_mlflow_health_stays_open_for_probes(stack):
    assert _http("GET", stack.mlflow_tracking_uri + "/health")[0] == 200


def test_mlflow_client_logs_through_the_artifact_proxy_without_s3_keys(stack, s3_client, tmp_path, monkeypatch):
    """The client holds no key of the MLflow bucket: the server's proxy (``mlflow`` identity) writes."""
    import mlflow

    from smflow.ml.registry import configure

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    configure(stack)
    experiment = mlflow.set_experiment("security-proxy-test")
    payload = tmp_path / "proxied.txt"
    payload.write_text(f"proxied {uuid.uuid4()}\n")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_artifact(str(payload))
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    keys = [obj["Key"] for obj in s3_client.list_objects_v2(
        Bucket=stack.mlflow_bucket, Prefix="artifacts/").get("Contents", []) if run.info.run_id in obj["Key"]]
    assert [key for key in keys if key.endswith("proxied.txt")], keys


# --- S3, filer, volume server ---------------------------------------------------------------------


def _anonymous_client(stack):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=stack.s3_endpoint_url, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


@pytest.fixture
def published_probe(stack, s3_client):
    """An object in the products bucket, put by the admin; removed at the end."""
    key = f"security-probe/{uuid.uuid4().hex}.json"
    body = b'{"public": true}\n'
    s3_client.put_object(Bucket=stack.products_bucket, Key=key, Body=body, ContentType="application/json")
    yield key, body
    s3_client.delete_object(Bucket=stack.products_bucket, Key=key)


def test_anonymous_callers_read_and_list_the_products_bucket_but_cannot_change_it(stack, s3_client, published_probe):
    """The public catalogue: unsigned S3 calls and plain HTTP GETs read and list the products
    bucket; every write, delete, ACL or tag change, and bucket operation is refused."""
    key, body = published_probe
    bucket = stack.products_bucket
    anonymous = _anonymous_client(stack)
    assert anonymous.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert anonymous.head_object(Bucket=bucket, Key=key)["ContentType"] == "application/json"
    listed = anonymous.list_objects_v2(Bucket=bucket, Prefix="security-probe/")["Contents"]
    assert key in [o["Key"] for o in listed]
    assert _http("GET", stack.products_url(key)) == (200, body)  # a browser, curl, xarray over HTTP
    # the only bucket an anonymous caller sees
    assert [b["Name"] for b in anonymous.list_buckets()["Buckets"]] == [bucket]

    assert _denied(lambda: anonymous.put_object(Bucket=bucket, Key=key, Body=b"defaced")) == "AccessDenied"
    assert _denied(lambda: anonymous.put_object(Bucket=bucket, Key=key + ".new", Body=b"x")) == "AccessDenied"
    assert _denied(lambda: anonymous.delete_object(Bucket=bucket, Key=key)) == "AccessDenied"
    assert _denied(lambda: anonymous.copy_object(Bucket=bucket, Key=key + ".copy",
                                                 CopySource={"Bucket": bucket, "Key": key})) == "AccessDenied"
    assert _denied(lambda: anonymous.put_object_acl(Bucket=bucket, Key=key, ACL="public-read-write")) \
        == "AccessDenied"
    assert _denied(lambda: anonymous.put_object_tagging(
        Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})) == "AccessDenied"
    assert _denied(lambda: anonymous.delete_bucket(Bucket=bucket)) == "AccessDenied"
    assert _denied(lambda: anonymous.create_bucket(Bucket=f"sm-anon-{uuid.uuid4().hex[:8]}")) == "AccessDenied"
    assert _http("PUT", stack.products_url(key), data=b"defaced")[0] == 403
    assert _http("DELETE", stack.products_url(key))[0] == 403
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == body  # untouched
    assert list_keys(s3_client, bucket, key + ".") == []


def test_anonymous_callers_get_nothing_from_the_other_buckets(stack, s3_client, landed):
    """Landing, store, MLflow and the health bucket stay private: no read, listing or write."""
    from smflow.s3 import ensure_bucket

    key, _ = landed
    anonymous = _anonymous_client(stack)
    probe = f"security-probe/{uuid.uuid4().hex}"
    for bucket in (stack.store_bucket, stack.mlflow_bucket):
        ensure_bucket(s3_client, bucket)
        s3_client.put_object(Bucket=bucket, Key=probe, Body=b"private")
    try:
        for bucket, object_key in ((stack.landing_bucket, key), (stack.store_bucket, probe),
                                   (stack.mlflow_bucket, probe), ("sm-health", "probe")):
            assert _denied(lambda: anonymous.get_object(Bucket=bucket, Key=object_key)) == "AccessDenied", bucket
            assert _denied(lambda: anonymous.head_object(Bucket=bucket, Key=object_key)) in ("403", "AccessDenied")
            assert _denied(lambda: anonymous.list_objects_v2(Bucket=bucket)) == "AccessDenied", bucket
            assert _denied(lambda: anonymous.put_object(Bucket=bucket, Key=object_key, Body=b"x")) == "AccessDenied"
            assert _denied(lambda: anonymous.delete_object(Bucket=bucket, Key=object_key)) == "AccessDenied"
            assert _http("GET", f"{stack.s3_endpoint_url}/{bucket}/{object_key}")[0] == 403
    finally:
        for bucket in (stack.store_bucket, stack.mlflow_bucket):
            s3_client.delete_object(Bucket=bucket, Key=probe)


def test_filer_and_volume_ports_serve_nothing_without_the_stacks_token(stack, landed):
    """Anonymous filer GET/PUT and volume GET by file id answer 401; the same filer read signed
    with the stack's key answers (so 401 is the lock, not a dead port)."""
    import jwt

    key, body = landed
    settings = _stack_module().Config.load()
    filer = f"http://127.0.0.1:{settings.s3_filer_port}"
    path = f"/buckets/{stack.landing_bucket}/{key}"
    assert _http("GET", filer + path)[0] == 401
    assert _http("GET", filer + f"/buckets/{stack.store_bucket}/")[0] == 401
    assert _http("PUT", filer + f"/buckets/{stack.landing_bucket}/security-probe/planted.nc", data=b"planted")[0] == 401

    signing = json.loads((stack.home / "s3" / "jwt-keys.json").read_text())
    token = jwt.encode({"exp": int(time.time()) + 30}, signing["filer_read"], algorithm="HS256")
    status, meta = _http("GET", filer + path + "?metadata=true", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, meta[:300]
    fids = [chunk.get("file_id") or chunk.get("fileId") for chunk in json.loads(meta).get("chunks") or []]
    assert fids, meta[:300]
    for fid in fids:
        assert _http("GET", f"http://127.0.0.1:{settings.s3_volume_port}/{fid}")[0] == 401
    status, got = _http("GET", filer + path, headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and got == body


# --- per-service S3 identities --------------------------------------------------------------------


def test_pipelines_read_the_landing_zone_but_cannot_delete_or_overwrite_it(stack, landed, s3_client):
    key, body = landed
    pipelines = _client(stack, _identities(stack)["pipelines"])
    assert pipelines.get_object(Bucket=stack.landing_bucket, Key=key)["Body"].read() == body
    assert key in [o["Key"] for o in pipelines.list_objects_v2(Bucket=stack.landing_bucket,
                                                               Prefix="security-probe/")["Contents"]]
    assert _denied(lambda: pipelines.delete_object(Bucket=stack.landing_bucket, Key=key)) == "AccessDenied"
    assert _denied(lambda: pipelines.put_object(Bucket=stack.landing_bucket, Key=key, Body=b"overwritten")) \
        == "AccessDenied"
    assert _denied(lambda: pipelines.put_object(Bucket=stack.landing_bucket, Key=key + ".new", Body=b"x")) \
        == "AccessDenied"
    assert _denied(lambda: pipelines.copy_object(Bucket=stack.landing_bucket, Key=key,
                                                 CopySource={"Bucket": stack.landing_bucket, "Key": key},
                                                 MetadataDirective="REPLACE")) == "AccessDenied"
    assert s3_client.get_object(Bucket=stack.landing_bucket, Key=key)["Body"].read() == body  # untouched


def test_pipelines_write_store_and_products_but_not_mlflow_nor_buckets(stack, s3_client):
    pipelines = _client(stack, _identities(stack)["pipelines"])
    key = f"security-probe/{uuid.uuid4().hex}"
    for bucket in (stack.store_bucket, stack.products_bucket):
        pipelines.put_object(Bucket=bucket, Key=key, Body=b"work")
        assert pipelines.get_object(Bucket=bucket, Key=key)["Body"].read() == b"work"
        pipelines.delete_object(Bucket=bucket, Key=key)
    assert _denied(lambda: pipelines.put_object(Bucket=stack.mlflow_bucket, Key=f"artifacts/{key}", Body=b"x")) \
        == "AccessDenied"
    assert _denied(lambda: pipelines.list_objects_v2(Bucket=stack.mlflow_bucket)) == "AccessDenied"
    assert _denied(lambda: pipelines.create_bucket(Bucket=f"sm-sec-{uuid.uuid4().hex[:8]}")) == "AccessDenied"


def test_landing_identity_writes_only_the_landing_zone(stack, s3_client):
    landing = _client(stack, _identities(stack)["landing"])
    key = f"security-probe/{uuid.uuid4().hex}.nc"
    landing.put_object(Bucket=stack.landing_bucket, Key=key, Body=b"granule")
    s3_client.delete_object(Bucket=stack.landing_bucket, Key=key)
    for bucket in (stack.store_bucket, stack.products_bucket, stack.mlflow_bucket):
        assert _denied(lambda: landing.put_object(Bucket=bucket, Key=key, Body=b"x")) == "AccessDenied"
        assert _denied(lambda: landing.list_objects_v2(Bucket=bucket)) == "AccessDenied"


def test_mlflow_identity_writes_its_prefix_only_and_reads_no_data_bucket(stack, landed, s3_client):
    key, _ = landed
    mlflow_keys = _client(stack, _identities(stack)["mlflow"])
    probe = f"artifacts/security-probe/{uuid.uuid4().hex}"
    mlflow_keys.put_object(Bucket=stack.mlflow_bucket, Key=probe, Body=b"artifact")
    s3_client.delete_object(Bucket=stack.mlflow_bucket, Key=probe)
    assert _denied(lambda: mlflow_keys.put_object(Bucket=stack.mlflow_bucket, Key="elsewhere/x", Body=b"x")) \
        == "AccessDenied"
    assert _denied(lambda: mlflow_keys.get_object(Bucket=stack.landing_bucket, Key=key)) == "AccessDenied"
    for bucket in (stack.landing_bucket, stack.store_bucket, stack.products_bucket):
        assert _denied(lambda: mlflow_keys.list_objects_v2(Bucket=bucket)) == "AccessDenied"


def test_stack_env_gives_clients_the_pipelines_identity_by_default(stack):
    """``Settings.load()`` (what the DAG tasks use) signs as ``pipelines``; the landing writer and
    the admin are separate roles; the MLflow server's keys are in no client file."""
    from smflow.config import Settings

    identities = _identities(stack)
    loaded = Settings.load()
    assert loaded.s3_keys() == (identities["pipelines"]["access_key"], identities["pipelines"]["secret_key"])
    assert loaded.s3_keys("landing")[0] == identities["landing"]["access_key"]
    assert loaded.s3_keys("admin")[0] != loaded.s3_keys()[0]
    assert identities["mlflow"]["secret_key"] not in (stack.home / "stack.env").read_text()


# --- secrets at rest --------------------------------------------------------------------------------


def _secret_values(home: Path) -> dict[str, str]:
    """``where -> value`` of every secret the stack generated (>= 12 characters)."""
    values: dict[str, str] = {}

    def collect(prefix: str, data) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                collect(f"{prefix}.{key}", value)
        elif isinstance(data, str) and len(data) >= 12:
            values[prefix] = data

    for name in ("s3/credentials.json", "s3/identities.json", "s3/jwt-keys.json", "providers/credentials.json",
                 "airflow/secrets.json", "mlflow/secrets.json", "webhooks/secrets.json",
                 "airflow/simple_auth_manager_passwords.json.generated"):
        if (home / name).is_file():
            collect(name, json.loads((home / name).read_text()))
    # Access keys are identifiers, not secrets: keep the secret halves only.
    return {where: value for where, value in values.items() if not where.endswith("access_key")}


def test_every_file_holding_a_secret_is_private(stack):
    home = stack.home
    secrets_ = _secret_values(home)
    assert len(secrets_) >= 10, sorted(secrets_)
    assert home.stat().st_mode & 0o077 == 0
    exposed = []
    for path in home.rglob("*"):
        if not path.is_file() or path.is_symlink() or any(part in ("data", "cache") for part in path.parts[-4:-1]):
            continue
        if path.stat().st_size > 20_000_000:
            continue
        content = path.read_bytes()
        if any(value.encode() in content for value in secrets_.values()) and path.stat().st_mode & 0o077:
            exposed.append(f"{path} {stat.filemode(path.stat().st_mode)}")
    assert not exposed, exposed
    for name in _stack_module().SECRET_FILES:
        if (home / name).is_file():
            assert (home / name).stat().st_mode & 0o077 == 0, name


def test_no_secret_value_is_in_a_daemon_log(stack):
    secrets_ = _secret_values(stack.home)
    logs = sorted((stack.home / "logs").glob("*.log"))
    assert logs
    leaks = [f"{log.name}: {where}" for log in logs for where, value in secrets_.items()
             if value.encode() in log.read_bytes()]
    assert not leaks, leaks
