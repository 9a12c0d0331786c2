"""Remote landing folders (issue 14.3): extracts read from a real SFTP server on loopback, streamed to a
hashed local snapshot, confined to the declared remote folder, credentials from the environment only."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ct_pipelines.core.settings import load_settings
from ct_pipelines.ingest.errors import IngestError
from ct_pipelines.ingest.ingest import ingest_dataset
from ct_pipelines.ingest.landing import Landing
from ct_pipelines_tests.support.sftp import PASSWORD, USERNAME, SftpServer, sftp_server

OLD = 1_700_000_000


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SftpServer]:
    (tmp_path / "served" / "landing").mkdir(parents=True)
    (tmp_path / "served" / "private").mkdir()
    for name in list(os.environ):
        if name.startswith(("CT_LANDING_", "CT_PIPELINES_")):
            monkeypatch.delenv(name)
    with sftp_server(tmp_path / "served") as running:
        monkeypatch.setenv("CT_LANDING_SFTP_USERNAME", USERNAME)
        monkeypatch.setenv("CT_LANDING_SFTP_PASSWORD", PASSWORD)
        monkeypatch.setenv("CT_LANDING_SFTP_HOST_KEY", running.fingerprint)
        yield running


def put(server: SftpServer, name: str, data: bytes, mtime: int = OLD) -> bytes:
    path = server.root / name.lstrip("/")
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return data


def test_an_sftp_source_is_streamed_hashed_and_loaded(server: SftpServer, tmp_path, make_dataset):
    put(server, "landing/x_01.csv", b"town,count\r\nAndover,1\r\n", OLD)
    rows = "".join(f"Town {n},{n}\r\n" for n in range(50_000))
    newest = put(
        server, "landing/x_02.csv", ("town,count\r\n" + rows + "Caf\xe9,7\r\n").encode("cp1252"), OLD + 60
    )
    landing = Landing(tmp_path / "local", (server.url("/landing"),))
    dataset = make_dataset(server.url("/landing/x_*.csv"))
    con, work = duckdb.connect(), tmp_path / "work"

    result = ingest_dataset(con, dataset, landing, run_id="r1", workdir=work)

    assert result.path == server.url("/landing/x_02.csv") and not result.skipped
    assert result.rows == 50_001 and result.size_bytes == len(newest)
    assert result.sha256 == hashlib.sha256(newest).hexdigest() and result.encoding == "cp1252"
    assert con.execute("SELECT count(*), max(town) FROM ingest__sample").fetchone() == (50_001, "Town 9999")
    assert con.execute("SELECT path, sha256, mtime_ns FROM meta.ingest_log").fetchall() == [
        (result.path, result.sha256, (OLD + 60) * 1_000_000_000)
    ]
    assert not any(work.iterdir())  # the streamed copy is removed after loading
    again = ingest_dataset(con, dataset, landing, run_id="r2", workdir=work)
    assert again.skipped and "same name, size and mtime" in again.reason


def test_a_remote_landing_root_takes_relative_paths_from_the_environment(
    server: SftpServer, tmp_path, make_dataset, monkeypatch
):
    monkeypatch.setenv("CT_PIPELINES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CT_PIPELINES_LANDING", server.url("/landing"))
    data = put(server, "landing/requests.csv", b"town\nBristol\nCanton\n")
    settings = load_settings()
    assert (
        settings.landing_url == server.url("/landing")
        and settings.landing_dir == tmp_path / "home" / "landing"
    )
    con = duckdb.connect()
    result = ingest_dataset(con, make_dataset("requests.csv"), settings, run_id="r1", workdir=tmp_path / "w")
    assert (result.rows, result.sha256) == (2, hashlib.sha256(data).hexdigest())
    with pytest.raises(IngestError, match="leaves the remote landing folder"):
        ingest_dataset(con, make_dataset("../private/*.csv"), settings, run_id="r2", workdir=tmp_path / "w")


@pytest.mark.parametrize("path", ["/private/secret.csv", "/landing/../private/secret.csv", "/landing"])
def test_urls_outside_the_declared_remote_folder_are_refused(
    server: SftpServer, tmp_path, make_dataset, path
):
    put(server, "private/secret.csv", b"ssn\n123-45-6789\n")
    landing = Landing(tmp_path, (server.url("/landing"),))
    with pytest.raises(IngestError, match="outside every declared remote landing folder"):
        ingest_dataset(
            duckdb.connect(), make_dataset(server.url(path)), landing, run_id="r", workdir=tmp_path
        )


def test_credentials_come_only_from_the_environment_and_never_show_in_messages(
    server: SftpServer, tmp_path, make_dataset, monkeypatch
):
    put(server, "landing/x.csv", b"town\nAndover\n")
    landing = Landing(tmp_path, (server.url("/landing"),))

    def refused(url: str) -> str:
        with pytest.raises(IngestError) as caught:
            ingest_dataset(duckdb.connect(), make_dataset(url), landing, run_id="r", workdir=tmp_path / "w")
        return str(caught.value)

    in_url = refused(f"sftp://{USERNAME}:{PASSWORD}@127.0.0.1:{server.port}/landing/x.csv")
    assert "carries a password" in in_url and PASSWORD not in in_url
    monkeypatch.setenv("CT_LANDING_SFTP_PASSWORD", "wrong-" + PASSWORD)
    wrong = refused(server.url("/landing/x.csv"))
    assert "cannot connect" in wrong and "refused the user name, password or key" in wrong
    assert PASSWORD not in wrong and "Exception" not in wrong
    monkeypatch.setenv("CT_LANDING_SFTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("CT_LANDING_SFTP_HOST_KEY", "SHA256:" + "A" * 43)  # an impostor's key
    assert "cannot connect" in refused(server.url("/landing/x.csv"))
    monkeypatch.delenv("CT_LANDING_SFTP_HOST_KEY")
    assert "host key is not configured" in refused(server.url("/landing/x.csv"))


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3-compatible server on loopback; standard AWS_* variables carry the (dummy) credentials."""
    server_module = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "landing-test",
        "AWS_SECRET_ACCESS_KEY": "landing-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CT_LANDING_S3_ENDPOINT_URL": f"http://{host}:{port}",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_an_s3_source_is_streamed_hashed_and_loaded(s3_endpoint: str, tmp_path, make_dataset):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="ct-landing")
    s3.put_object(Bucket="ct-landing", Key="dss/x_01.csv", Body=b"town,count\nAndover,1\n")
    s3.put_object(Bucket="ct-landing", Key="private/secret.csv", Body=b"ssn\n123-45-6789\n")
    body = ("town,count\n" + "".join(f"Town {n},{n}\n" for n in range(20_000))).encode()
    s3.put_object(Bucket="ct-landing", Key="dss/x_02.csv", Body=body)  # written last: the newest
    landing = Landing(tmp_path, ("s3://ct-landing/dss",))
    con = duckdb.connect()
    result = ingest_dataset(
        con, make_dataset("s3://ct-landing/dss/x_*.csv"), landing, run_id="r1", workdir=tmp_path / "w"
    )
    assert result.path == "s3://ct-landing/dss/x_02.csv" and result.rows == 20_000
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert con.execute("SELECT count(*) FROM ingest__sample").fetchone() == (20_000,)
    with pytest.raises(IngestError, match="outside every declared remote landing folder"):
        ingest_dataset(
            con, make_dataset("s3://ct-landing/private/*.csv"), landing, run_id="r2", workdir=tmp_path / "w"
        )
