"""The local portal seen only through sodapy (plus the sodapy session for the Metadata API PATCH),
the way a publishing or auditing script sees data.ct.gov."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sodapy import Socrata

from ct_pipelines.portal.local import LocalPortal

COLUMNS = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "town", "name": "Town", "dataTypeName": "text"},
    {"fieldName": "count", "name": "Count", "dataTypeName": "number"},
    {"fieldName": "report_date", "name": "Report Date", "dataTypeName": "calendar_date"},
    {"fieldName": "suppressed", "name": "Suppressed", "dataTypeName": "checkbox"},
]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture(scope="module")
def client(portal: LocalPortal) -> Iterator[Socrata]:
    with portal.socrata_client() as socrata:
        yield socrata


def new_dataset(client: Socrata, row_identifier: str | None = "case_id", **kwargs: object) -> str:
    extra = {"row_identifier": row_identifier} if row_identifier else {}
    view = client.create("Cases by town", description="Test data", columns=COLUMNS, **extra, **kwargs)
    return view["id"]


def test_create_returns_an_unpublished_view_with_columns_and_row_identifier(client: Socrata) -> None:
    view = client.create(
        "Cases by town",
        columns=COLUMNS,
        row_identifier="case_id",
        category="Health and Human Services",
        tags=["covid"],
    )
    assert len(view["id"]) == 9 and view["id"][4] == "-"
    assert view["publicationStage"] == "unpublished"
    assert [c["fieldName"] for c in view["columns"]] == [c["fieldName"] for c in COLUMNS]
    assert [c["position"] for c in view["columns"]] == [1, 2, 3, 4, 5]
    case_column = view["columns"][0]
    assert view["rowIdentifierColumnId"] == case_column["id"]
    assert view["metadata"]["rowIdentifier"] == "case_id"
    assert isinstance(view["createdAt"], int) and isinstance(view["rowsUpdatedAt"], int)
    assert client.publish(view["id"])["publicationStage"] == "published"
    assert client.get_metadata(view["id"])["publicationStage"] == "published"


def test_upsert_counts_created_updated_deleted_and_errors(client: Socrata) -> None:
    dataset = new_dataset(client)
    first = client.upsert(
        dataset,
        [
            {
                "case_id": "a",
                "town": "Hartford",
                "count": 12,
                "report_date": "2024-01-05",
                "suppressed": False,
            },
            {"case_id": "b", "town": "Bristol", "count": "7.5"},
            {"town": "no identifier"},
            {"case_id": "c", "count": "not a number"},
        ],
    )
    assert first == {
        "Rows Created": 2,
        "Rows Updated": 0,
        "Rows Deleted": 0,
        "By RowIdentifier": 0,
        "By SID": 0,
        "Errors": 2,
    }
    second = client.upsert(
        dataset,
        [
            {"case_id": "a", "count": 13},
            {"case_id": "b", ":deleted": True},
            {"case_id": "zz", ":deleted": True},
        ],
    )
    assert second["Rows Updated"] == 1 and second["Rows Deleted"] == 1 and second["Errors"] == 1
    assert second["By RowIdentifier"] == 2
    rows = client.get(dataset)
    # omitted fields are left unchanged by an upsert; values come back as Socrata types
    assert rows == [
        {
            "case_id": "a",
            "town": "Hartford",
            "count": "13",
            "report_date": "2024-01-05T00:00:00.000",
            "suppressed": False,
        }
    ]
    # retrying the same upsert is idempotent: creates become updates
    retry = client.upsert(dataset, [{"case_id": "a", "count": 13}])
    assert retry["Rows Created"] == 0 and retry["Rows Updated"] == 1


def test_upsert_without_row_identifier_appends(client: Socrata) -> None:
    dataset = new_dataset(client, row_identifier=None)
    client.upsert(dataset, [{"town": "Avon"}])
    client.upsert(dataset, [{"town": "Avon"}])
    assert [r["town"] for r in client.get(dataset)] == ["Avon", "Avon"]


def test_replace_with_json_and_csv_truncates_first(client: Socrata) -> None:
    dataset = new_dataset(client)
    client.upsert(dataset, [{"case_id": str(i), "town": "Old"} for i in range(5)])
    result = client.replace(dataset, [{"case_id": "x", "town": "New"}])
    assert result["Rows Created"] == 1 and result["Errors"] == 0
    assert client.get(dataset) == [{"case_id": "x", "town": "New"}]

    csv_body = io.StringIO('case_id,town,count,suppressed\ny,"Hartford, CT",3,true\nz,,,\n')
    result = client.replace(dataset, csv_body)
    assert result["Rows Created"] == 2
    rows = client.get(dataset, order="case_id")
    assert rows == [
        {"case_id": "y", "town": "Hartford, CT", "count": "3", "suppressed": True},
        {"case_id": "z"},
    ]


def test_csv_upsert_accepts_deleted_column_and_empty_cells_set_null(client: Socrata) -> None:
    dataset = new_dataset(client)
    client.upsert(dataset, [{"case_id": "a", "town": "Avon"}, {"case_id": "b", "town": "Berlin"}])
    result = client.upsert(dataset, io.StringIO("case_id,town,:deleted\na,,false\nb,,true\n"))
    assert result["Rows Updated"] == 1 and result["Rows Deleted"] == 1
    assert client.get(dataset) == [{"case_id": "a"}]


def test_paged_reads_with_order_where_and_select(client: Socrata) -> None:
    dataset = new_dataset(client)
    client.upsert(dataset, [{"case_id": f"{i:05d}", "town": f"t{i % 3}", "count": i} for i in range(2_345)])
    everything = list(client.get_all(dataset, order=":id"))
    assert [r["case_id"] for r in everything] == [f"{i:05d}" for i in range(2_345)]
    assert len(client.get(dataset)) == 1000  # Socrata's default $limit
    newest = client.get(dataset, order="count DESC", limit=2, select="case_id, count")
    assert newest == [{"case_id": "02344", "count": "2344"}, {"case_id": "02343", "count": "2343"}]
    picked = client.get(
        dataset,
        where="(count < 10 AND town = 't0') OR case_id IN ('00100', '00101') OR count between 2000 and 2001",
        order="case_id",
        select="case_id",
    )
    assert [r["case_id"] for r in picked] == [
        "00000",
        "00003",
        "00006",
        "00009",
        "00100",
        "00101",
        "02000",
        "02001",
    ]
    assert client.get(dataset, where="town like 't1%' AND count >= 2340", select="count(*)") == [
        {"count": "2"}
    ]
    assert client.get(dataset, town="t2", where="count < 6", select="case_id") == [
        {"case_id": "00002"},
        {"case_id": "00005"},
    ]
    with_system = client.get(dataset, select=":*, *", limit=1)[0]
    assert with_system[":id"].startswith("row-") and with_system[":created_at"].endswith("Z")
    assert ":id" not in client.get(dataset, limit=1)[0]


def test_metadata_get_and_update_replace_top_level_keys(client: Socrata) -> None:
    dataset = new_dataset(client, category="Health and Human Services")
    updated = client.update_metadata(
        dataset,
        {
            "description": "Weekly counts",
            "columns": [{"fieldName": "town", "description": "Connecticut town"}],
            "metadata": {"custom_fields": {"Publishing Details": {"Update Frequency": "Weekly"}}},
        },
    )
    assert updated["description"] == "Weekly counts"
    view = client.get_metadata(dataset)
    assert view["description"] == "Weekly counts"
    assert next(c for c in view["columns"] if c["fieldName"] == "town")["description"] == "Connecticut town"
    assert view["metadata"]["custom_fields"] == {"Publishing Details": {"Update Frequency": "Weekly"}}
    # the row identifier survives a metadata replace that does not mention it
    assert view["metadata"]["rowIdentifier"] == "case_id"
    with pytest.raises(requests.HTTPError) as bad_category:
        client.update_metadata(dataset, {"category": "Fun"})
    assert bad_category.value.response.status_code == 400


def test_metadata_api_patch_merges_and_validates(portal: LocalPortal, client: Socrata) -> None:
    dataset = new_dataset(client, category="Health and Human Services")
    url = f"{portal.url}/api/views/metadata/v1/{dataset}"
    patch = {
        "customFields": {"Publishing Details": {"Update Frequency": "Daily", "Contact Email": "a@ct.gov"}}
    }
    applied = client.session.patch(url, json=patch)
    assert applied.status_code == 200
    assert applied.json()["customFields"]["Publishing Details"]["Update Frequency"] == "Daily"

    dry = client.session.patch(
        f"{url}?validateOnly=true",
        json={"name": "Renamed", "customFields": {"Publishing Details": {"Contact Email": None}}},
    )
    assert dry.status_code == 200
    assert dry.json()["name"] == "Renamed"
    assert dry.json()["customFields"] == {"Publishing Details": {"Update Frequency": "Daily"}}
    current = client.session.get(url).json()
    assert current["name"] == "Cases by town"  # validateOnly wrote nothing
    assert current["customFields"]["Publishing Details"]["Contact Email"] == "a@ct.gov"
    assert current["dataUri"].endswith(f"/resource/{dataset}") and current["createdAt"].endswith("Z")

    unknown = {"customFields": {"Publishing Details": {"Colour": "blue"}}}
    warned = client.session.patch(f"{url}?validateOnly=true", json=unknown)
    assert warned.status_code == 200 and warned.json()["warnings"]
    strict = client.session.patch(f"{url}?validateOnly=true&strict=true", json=unknown)
    assert strict.status_code == 400 and strict.json()["error"] is True
    assert "Colour" in strict.json()["message"]
    assert client.session.patch(url, json={"category": "Fun"}).status_code == 400

    wiped = client.session.patch(url, json={"customFields": None})
    assert wiped.json()["customFields"] is None


def test_catalog_pages_past_the_limit(portal: LocalPortal, client: Socrata) -> None:
    assert portal.store is not None
    seeded = portal.store.seed_views(
        {
            "name": f"Seeded {i}",
            "category": "Education",
            "tags": ["seeded"],
            "columns": [{"fieldName": "x", "dataTypeName": "number"}],
            "metadata": {"custom_fields": {"Dataset Information": {"Agency": "SDE"}}},
        }
        for i in range(130)
    )
    everything = client.datasets()
    ids = [r["resource"]["id"] for r in everything]
    assert set(seeded) <= set(ids) and len(ids) == len(set(ids))
    seeded_only = client.datasets(tags=["seeded"], order="name")
    assert len(seeded_only) == 130
    record = seeded_only[0]
    assert record["resource"]["type"] == "dataset" and record["resource"]["columns_field_name"] == ["x"]
    assert record["classification"]["domain_category"] == "Education"
    assert {"key": "Dataset-Information_Agency", "value": "SDE"} in record["classification"][
        "domain_metadata"
    ]
    assert record["metadata"]["domain"] == portal.domain
    page = client.datasets(limit=50, offset=60, tags=["seeded"], order="name")
    assert [r["resource"]["id"] for r in page] == [r["resource"]["id"] for r in seeded_only[60:110]]
    assert client.datasets(ids=[seeded[3]])[0]["resource"]["name"] == "Seeded 3"


def test_errors_for_missing_datasets_and_credentials(portal: LocalPortal, client: Socrata) -> None:
    def failure(call) -> requests.Response:
        with pytest.raises(requests.HTTPError) as caught:
            call()
        return caught.value.response

    missing_rows = failure(lambda: client.get("zzzz-zzzz"))
    assert missing_rows.status_code == 404 and missing_rows.json()["code"] == "dataset.missing"
    missing_view = failure(lambda: client.get_metadata("zzzz-zzzz"))
    assert missing_view.status_code == 404 and missing_view.json()["code"] == "not_found"

    dataset = new_dataset(client)
    anonymous = portal.socrata_client(username=None, password=None)
    assert anonymous.get(dataset) == []  # reads are open
    no_login = failure(lambda: anonymous.upsert(dataset, [{"case_id": "a"}]))
    assert no_login.status_code == 403 and no_login.json()["error"] is True
    wrong = failure(
        lambda: portal.socrata_client(password="not-the-password").upsert(dataset, [{"case_id": "a"}])
    )
    assert wrong.status_code == 401
    assert client.get(dataset) == []  # neither write landed

    malformed = failure(lambda: client.get(dataset, where="count >"))
    assert malformed.status_code == 400 and malformed.json()["code"] == "query.compiler.malformed"
    unknown = failure(lambda: client.get(dataset, where="colour = 'red'"))
    assert unknown.json()["code"] == "query.soql.no-such-column"
    bad_field = failure(lambda: client.upsert(dataset, [{"case_id": "a", "colour": "red"}]))
    assert bad_field.status_code == 400 and "colour" in bad_field.json()["message"]


def test_delete_row_by_identifier(client: Socrata) -> None:
    dataset = new_dataset(client)
    client.upsert(dataset, [{"case_id": "a"}, {"case_id": "b"}])
    answer = client.delete(dataset, row_id="a")
    assert answer[0]["typ"] == "delete" and answer[0]["id"].startswith("row-")
    assert client.get(dataset) == [{"case_id": "b"}]
    with pytest.raises(requests.HTTPError):
        client.delete(dataset, row_id="a")


def test_rows_updated_at_moves_on_data_writes_only(portal: LocalPortal, client: Socrata) -> None:
    assert portal.store is not None
    (dataset,) = portal.store.seed_views(
        [{"name": "Old", "columns": COLUMNS, "rowsUpdatedAt": 1_000, "viewLastModified": 1_000}]
    )
    client.update_metadata(dataset, {"description": "metadata only"})
    after_metadata = client.get_metadata(dataset)
    assert after_metadata["rowsUpdatedAt"] == 1_000 and after_metadata["viewLastModified"] > 1_000
    client.upsert(dataset, [{"case_id": "a"}])
    assert client.get_metadata(dataset)["rowsUpdatedAt"] > 1_000


def test_data_persists_across_restarts(tmp_path: Path) -> None:
    with LocalPortal(tmp_path) as first:
        client = first.socrata_client()
        dataset = new_dataset(client)
        client.upsert(dataset, [{"case_id": "kept", "count": 1}])
    with LocalPortal(tmp_path) as second:
        client = second.socrata_client()
        assert client.get(dataset) == [{"case_id": "kept", "count": "1"}]
        client.upsert(dataset, [{"case_id": "new"}])
        assert [r["case_id"] for r in client.get(dataset, order=":id")] == ["kept", "new"]
