"""Each injected fault as a sodapy/requests client experiences it, and that faults fire before the
write is applied (except ``reset_after_apply``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata
from urllib3.util.retry import Retry

from ct_pipelines.portal.local import LocalPortal
from ct_pipelines_tests.support.faults import FaultPlan, FaultRule

COLUMNS = [{"fieldName": "key", "dataTypeName": "text"}, {"fieldName": "value", "dataTypeName": "number"}]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPortal]:
    with LocalPortal(tmp_path_factory.mktemp("faults"), interceptor=FaultPlan()) as running:
        yield running


def faults(portal: LocalPortal) -> FaultPlan:
    """The fault plan the portal was started with (its request interceptor)."""
    assert isinstance(portal.interceptor, FaultPlan)
    return portal.interceptor


@pytest.fixture
def client(portal: LocalPortal) -> Iterator[Socrata]:
    faults(portal).clear()
    with portal.socrata_client() as socrata:
        yield socrata
    faults(portal).clear()


@pytest.fixture
def dataset(client: Socrata) -> str:
    return client.create("Faults", columns=COLUMNS, row_identifier="key")["id"]


def status_of_failure(call) -> requests.Response:
    with pytest.raises(requests.HTTPError) as caught:
        call()
    return caught.value.response


@pytest.mark.parametrize("kind", ["429", "500", "503"])
def test_error_faults_answer_before_applying(
    portal: LocalPortal, client: Socrata, dataset: str, kind: str
) -> None:
    faults(portal).add(
        FaultRule(kind=kind, at=[1], methods={"POST"}, path_prefix="/resource/", retry_after=7)
    )
    response = status_of_failure(lambda: client.upsert(dataset, [{"key": "a", "value": 1}]))
    assert response.status_code == int(kind)
    assert response.json()["error"] is True
    if kind in ("429", "503"):
        assert response.headers["Retry-After"] == "7"
    assert client.get(dataset) == []  # nothing was written
    # only the first matching request fails
    assert client.upsert(dataset, [{"key": "a", "value": 1}])["Rows Created"] == 1


def test_202_is_success_to_sodapy_but_nothing_is_applied(
    portal: LocalPortal, client: Socrata, dataset: str
) -> None:
    faults(portal).add(FaultRule(kind="202", at=[1], methods={"POST"}))
    answer = client.upsert(dataset, [{"key": "a"}])
    assert "Rows Created" not in answer
    assert client.get(dataset) == []


def test_413_only_over_the_body_size(portal: LocalPortal, client: Socrata, dataset: str) -> None:
    faults(portal).add(FaultRule(kind="413", max_body_bytes=2_000, methods={"POST", "PUT"}))
    assert client.upsert(dataset, [{"key": "small"}])["Rows Created"] == 1
    big = [{"key": f"k{i}", "value": i} for i in range(200)]
    assert status_of_failure(lambda: client.upsert(dataset, big)).status_code == 413
    assert status_of_failure(lambda: client.replace(dataset, big)).status_code == 413
    assert client.get(dataset) == [{"key": "small"}]


def test_reset_drops_the_connection_without_applying(
    portal: LocalPortal, client: Socrata, dataset: str
) -> None:
    faults(portal).add(FaultRule(kind="reset", at=[1], methods={"POST"}))
    with pytest.raises(requests.ConnectionError):
        client.upsert(dataset, [{"key": "a"}])
    assert portal.request_log[-1] == ("POST", f"/resource/{dataset}.json", 0)
    assert client.get(dataset) == []


def test_reset_after_apply_writes_and_a_retry_is_idempotent(
    portal: LocalPortal, client: Socrata, dataset: str
) -> None:
    faults(portal).add(FaultRule(kind="reset_after_apply", at=[1], methods={"POST"}))
    rows = [{"key": "a", "value": 1}, {"key": "b", "value": 2}]
    with pytest.raises(requests.ConnectionError):
        client.upsert(dataset, rows)
    assert len(client.get(dataset)) == 2  # it was applied
    retry = client.upsert(dataset, rows)
    assert retry["Rows Created"] == 0 and retry["Rows Updated"] == 2
    assert len(client.get(dataset)) == 2


def test_slow_answers_trip_a_client_timeout(portal: LocalPortal, dataset: str) -> None:
    faults(portal).add(FaultRule(kind="slow", at=[1], delay=1.5, methods={"GET"}))
    impatient = portal.socrata_client(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        impatient.get(dataset)
    assert time.monotonic() - started < 1.4
    assert impatient.get(dataset) == []


def test_probability_faults_are_reproducible_with_a_seed() -> None:
    def firing(seed: int) -> list[bool]:
        plan = FaultPlan(rules=[FaultRule(kind="500", probability=0.3, seed=seed)])
        return [plan.choose("GET", "/resource/x.json", None) is not None for _ in range(200)]

    first = firing(7)
    assert first == firing(7)
    assert 30 < sum(first) < 90  # about 30 % of 200
    assert first != firing(8)


def test_rules_count_only_matching_requests() -> None:
    rule = FaultRule(kind="429", at=[2], methods={"POST"}, path_prefix="/resource/")
    plan = FaultPlan(rules=[rule])
    assert plan.choose("GET", "/resource/x.json", None) is None
    assert plan.choose("POST", "/api/views.json", None) is None
    assert plan.choose("POST", "/resource/x.json", None) is None  # first matching
    assert plan.choose("POST", "/resource/x.json", None) is rule  # second matching
    assert plan.choose("POST", "/resource/x.json", None) is None
    with pytest.raises(ValueError):
        FaultRule(kind="418")  # type: ignore[arg-type]


def test_a_retry_adapter_rides_out_429_and_503(portal: LocalPortal, dataset: str) -> None:
    faults(portal).add(FaultRule(kind="429", at=[1], methods={"POST"}, retry_after=0))
    faults(portal).add(FaultRule(kind="503", at=[2], methods={"POST"}, retry_after=0))
    retry = Retry(
        total=4,
        backoff_factor=0,
        status_forcelist=[429, 500, 503],
        allowed_methods=frozenset({"GET", "POST", "PUT"}),
        respect_retry_after_header=True,
    )
    patient = portal.socrata_client(
        session_adapter={"prefix": "http://", "adapter": HTTPAdapter(max_retries=retry)}
    )
    before = len(portal.request_log)
    assert patient.upsert(dataset, [{"key": "a"}])["Rows Created"] == 1
    statuses = [status for _, path, status in portal.request_log[before:] if path.startswith("/resource/")]
    assert statuses == [429, 503, 200]
