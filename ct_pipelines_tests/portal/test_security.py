"""The local portal is safe to expose (issue 17.4): hostile dataset ids never reach SQL, markup
in names is escaped, its files are owner-only, and it only listens beyond loopback when asked.
Also the two endpoints the reports work relies on: ``/data.json`` and a view's attachments. All
over real HTTP against the real server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sodapy import Socrata

from ct_pipelines.portal.cli import portal as portal_group
from ct_pipelines.portal.common import table_name
from ct_pipelines.portal.errors import PortalError
from ct_pipelines.portal.local import LocalPortal

COLUMNS = [{"fieldName": "town", "dataTypeName": "text"}, {"fieldName": "count", "dataTypeName": "number"}]
HOSTILE_ID = "y; COPY (SELECT 42) TO 'pwned.csv'; --"
ASSET = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture
def portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPortal]:
    monkeypatch.chdir(tmp_path)  # a relative COPY ... TO would land here
    with LocalPortal(tmp_path / "portal") as running:
        yield running


@pytest.fixture
def client(portal: LocalPortal) -> Iterator[Socrata]:
    with portal.socrata_client() as socrata:
        yield socrata


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_hostile_ids_get_socratas_404_on_every_route_and_run_no_sql(
    portal: LocalPortal, client: Socrata, tmp_path: Path
) -> None:
    real = client.create("Towns", columns=COLUMNS)["id"]
    client.upsert(real, [{"town": "Hartford", "count": 3}])
    auth = (portal.username, portal.password)
    quoted = requests.utils.quote(HOSTILE_ID, safe="")
    calls = [
        ("GET", f"/resource/{quoted}.json", "dataset.missing"),
        ("GET", f"/resource/{quoted}.csv", "dataset.missing"),
        ("GET", f"/resource/{quoted}/1.json", "dataset.missing"),
        ("DELETE", f"/resource/{quoted}/1.json", "dataset.missing"),
        ("POST", f"/resource/{quoted}.json", "dataset.missing"),
        ("PUT", f"/resource/{quoted}.json", "dataset.missing"),
        ("GET", f"/api/views/{quoted}.json", "not_found"),
        ("PUT", f"/api/views/{quoted}.json", "not_found"),
        ("DELETE", f"/api/views/{quoted}.json", "not_found"),
        ("POST", f"/api/views/{quoted}/publication.json", "not_found"),
        ("GET", f"/api/views/metadata/v1/{quoted}", "not_found"),
        ("PATCH", f"/api/views/metadata/v1/{quoted}", "not_found"),
        ("POST", f"/api/views/{quoted}/files", "not_found"),
        ("GET", f"/api/views/{quoted}/files/{ASSET}", "not_found"),
    ]
    for method, path, code in calls:
        answer = requests.request(method, portal.url + path, json=[{"town": "x"}], auth=auth, timeout=10)
        assert answer.status_code == 404, (method, path, answer.text)
        body = answer.json()
        assert body["code"] == code and body["error"] is True and body["data"]["id"] == HOSTILE_ID, path
        assert answer.headers["X-Error-Code"] == code
    page = requests.get(f"{portal.url}/d/{quoted}", timeout=10)
    assert page.status_code == 404 and "&#x27;pwned.csv&#x27;" in page.text and "'pwned.csv'" not in page.text
    assert not list(tmp_path.rglob("pwned*")), "a hostile id ran SQL"
    assert client.get(real) == [{"town": "Hartford", "count": "3"}]  # the real dataset is untouched


def test_created_ids_are_always_generated_and_seeded_ids_must_be_4x4(
    portal: LocalPortal, tmp_path: Path
) -> None:
    auth = (portal.username, portal.password)
    created = requests.post(
        f"{portal.url}/api/views.json",
        json={"id": HOSTILE_ID, "name": "Sneaky", "columns": COLUMNS},
        auth=auth,
        timeout=10,
    ).json()
    assert created["id"] != HOSTILE_ID and len(created["id"]) == 9 and created["id"][4] == "-"
    taken = requests.post(
        f"{portal.url}/api/views.json", json={"id": created["id"], "name": "Twin"}, auth=auth, timeout=10
    ).json()
    assert taken["id"] != created["id"]  # a payload cannot pick (or clash with) an id
    assert portal.store is not None
    with pytest.raises(PortalError, match="is not a 4x4"):
        portal.store.seed_views([{"id": HOSTILE_ID, "name": "Seeded"}])
    with pytest.raises(PortalError):
        table_name("../x-y")
    assert portal.store.seed_views([{"id": "ab12-cd34", "name": "Seeded"}]) == ["ab12-cd34"]
    assert not list(tmp_path.rglob("pwned*"))


def test_markup_in_names_descriptions_and_cells_is_escaped(portal: LocalPortal, client: Socrata) -> None:
    script = "<script>alert(1)</script>"
    view_id = client.create(script, description='"><img src=x onerror=alert(2)>', columns=COLUMNS)["id"]
    client.upsert(view_id, [{"town": script, "count": 1}])
    home = requests.get(portal.url + "/", timeout=10)
    assert home.status_code == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in home.text
    assert "<script>" not in home.text and "default-src 'none'" in home.headers["Content-Security-Policy"]
    page = requests.get(f"{portal.url}/d/{view_id}", timeout=10)
    assert page.status_code == 200 and "<script>" not in page.text and "<img" not in page.text
    assert page.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # title, heading, cell


def test_portal_files_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "portal"
    with LocalPortal(data_dir) as running, running.socrata_client() as client:
        view_id = client.create("Towns", columns=COLUMNS)["id"]
        client.upsert(view_id, [{"town": "Hartford", "count": 3}])
        wal = data_dir / "portal.duckdb.wal"
        assert wal.exists() and mode(wal) == 0o600  # the log holds the rows until a checkpoint
        assert mode(data_dir / "portal.duckdb") == 0o600
    assert mode(data_dir) == 0o700
    assert sorted(p.name for p in data_dir.iterdir()) == ["portal.duckdb"]  # no scratch payload left
    assert all(mode(p) == 0o600 for p in data_dir.iterdir())


def test_serve_keeps_its_folder_and_password_private_and_names_a_busy_port(tmp_path: Path) -> None:
    data_dir = tmp_path / "served"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(portal_group, ["serve", "--port", str(port), "--data", str(data_dir)])
    assert result.exit_code != 0 and f"Cannot listen on 127.0.0.1:{port}" in result.output
    assert mode(data_dir) == 0o700 and mode(data_dir / ".portal-password") == 0o600


def test_serve_refuses_every_non_loopback_host_without_allow_remote(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "192.168.1.20", "portal.example.org"):
        result = CliRunner().invoke(portal_group, ["serve", "--host", host, "--data", str(tmp_path / "d")])
        assert result.exit_code == 2, host
        assert f"{host} is not a loopback address" in result.output and "--allow-remote" in result.output
    assert not (tmp_path / "d").exists()  # refused before anything was created


# ---------------------------------------------------------------- /data.json and attachments


def test_data_json_is_served_from_the_data_folder_when_present(portal: LocalPortal) -> None:
    url = f"{portal.url}/data.json"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    catalog = {"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": [{"title": "Towns"}]}
    (portal.data_dir / "data.json").write_text(json.dumps(catalog))
    served = requests.get(url, timeout=10)
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    assert served.json() == catalog
    (portal.data_dir / "data.json").write_text('{"dataset": [')  # a half-written catalog
    broken = requests.get(url, timeout=10)
    assert broken.status_code == 500 and "regenerate" in broken.json()["message"]


def test_attachments_upload_list_and_download_like_socrata(
    portal: LocalPortal, client: Socrata, tmp_path: Path
) -> None:
    view_id = client.create("Towns", columns=COLUMNS)["id"]
    auth = (portal.username, portal.password)
    files_url = f"{portal.url}/api/views/{view_id}/files"
    pdf = b"%PDF-1.4\r\n" + bytes(range(256)) * 40 + b"\r\n--boundary-look-alike\r\n%%EOF"
    multipart = requests.post(
        files_url, files={"file": ("data dictionary.pdf", pdf, "application/pdf")}, auth=auth, timeout=10
    )
    assert multipart.status_code == 200
    first = multipart.json()
    assert first["filename"] == "data dictionary.pdf" and len(first["file"]) == 36
    raw = requests.post(
        files_url,
        params={"filename": "../../notes.txt"},
        data=b"Counts under 5 are suppressed.\n",
        headers={"Content-Type": "text/plain"},
        auth=auth,
        timeout=10,
    ).json()
    assert raw["filename"] == "notes.txt"  # no folders: sodapy joins it to its download path
    attachments = client.get_metadata(view_id)["metadata"]["attachments"]
    assert attachments == [
        {"assetId": first["file"], "filename": "data dictionary.pdf", "name": "data dictionary.pdf"},
        {"assetId": raw["file"], "filename": "notes.txt", "name": "notes.txt"},
    ]
    downloaded = client.download_attachments(view_id, download_dir=str(tmp_path / "downloads"))
    contents = {Path(p).name: Path(p).read_bytes() for p in downloaded}
    assert contents == {"data dictionary.pdf": pdf, "notes.txt": b"Counts under 5 are suppressed.\n"}
    answer = requests.get(f"{files_url}/{first['file']}", params={"download": "true"}, timeout=10)
    assert answer.headers["Content-Disposition"] == 'attachment; filename="data dictionary.pdf"'
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_attachment_errors_are_socrata_shaped_and_change_nothing(
    portal: LocalPortal, client: Socrata
) -> None:
    view_id = client.create("Towns", columns=COLUMNS)["id"]
    files_url = f"{portal.url}/api/views/{view_id}/files"
    anonymous = requests.post(files_url, data=b"x", params={"filename": "a.txt"}, timeout=10)
    assert anonymous.status_code == 403 and anonymous.json()["code"] == "permission_denied"
    auth = (portal.username, portal.password)
    empty = requests.post(files_url, data=b"", auth=auth, timeout=10)
    assert empty.status_code == 400 and "empty" in empty.json()["message"]
    no_file = requests.post(files_url, files={"name": (None, "just a field")}, auth=auth, timeout=10)
    assert no_file.status_code == 400 and "part named 'file'" in no_file.json()["message"]
    html_upload = requests.post(
        files_url,
        data=b"<script>alert(1)</script>",
        params={"filename": "x.html"},
        headers={"Content-Type": "text/html"},
        auth=auth,
        timeout=10,
    ).json()
    served = requests.get(f"{files_url}/{html_upload['file']}", timeout=10)
    assert served.headers["content-type"] == "application/octet-stream"  # never rendered as a page
    for asset in (ASSET, "not-a-uuid"):
        missing = requests.get(f"{files_url}/{asset}", timeout=10)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    other = client.create("Other", columns=COLUMNS)["id"]
    crossed = requests.get(f"{portal.url}/api/views/{other}/files/{html_upload['file']}", timeout=10)
    assert crossed.status_code == 404  # an asset belongs to its own dataset
    assert [a["filename"] for a in client.get_metadata(view_id)["metadata"]["attachments"]] == ["x.html"]
