"""Query parameters (service/queries.py): every route takes those the
contract declares for it and answers any other with a 422 naming it; and
``GET /jobs?status=`` filters with honest paging (jobs/store.py page)."""

import time
import uuid

import pytest
from openapi_check import validate_against

import jobs.store
from jobs.store import new_job_id
from service.queries import UNKNOWN
from service.queries import contract_queries
from service.queries import openapi_path

#: A value for each route variable that the route accepts as such.
VARIABLES = {
    "job_id": "0" * 32,
    "dataset_id": "0" * 32,
    "asset": "docs.js",
    "version": "0" * 12,
    "name": "api.js",
    "sweep_id": "0" * 32,
    "trial": "0",
}


def app_routes(app):
    """(Flask rule, its URL, method) of every route of the app but OPTIONS."""
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<{name}>", VARIABLES[name])
        for method in sorted(rule.methods - {"OPTIONS"}):
            yield rule, url, method


def test_every_route_refuses_an_unknown_query_parameter_by_name(app, spec):
    client = app.test_client()
    routes = list(app_routes(app))
    assert len(routes) > 20  # every route, HEAD included
    for _rule, url, method in routes:
        response = client.open(f"{url}?bogus=1&also_bogus=", method=method)
        assert response.status_code == 422, (method, url, response.get_data())
        if method != "HEAD":
            body = response.get_json()
            assert body["errors"] == {"also_bogus": [UNKNOWN], "bogus": [UNKNOWN]}, (method, url)
            assert "also_bogus, bogus" in body["detail"]
            validate_against(spec, "/components/responses/UnprocessableContent", response)


def test_the_parameters_a_route_declares_are_not_unknown(app):
    client = app.test_client()
    declared = 0
    for rule, url, method in app_routes(app):
        known = contract_queries()[
            openapi_path(rule.rule), "get" if method == "HEAD" else method.lower()
        ]
        declared += len(known)
        query = "&".join(f"{name}=1" for name in sorted(known))
        response = client.open(f"{url}?{query}&bogus=1", method=method)
        assert response.status_code == 422, (method, url)
        if method != "HEAD":
            assert response.get_json()["errors"] == {"bogus": [UNKNOWN]}, (method, url)
    assert declared >= 5  # /params' three and GET /jobs' three, at least


def test_the_contract_lists_what_the_views_read(app):
    assert contract_queries()["/jobs", "get"] == {"page_size", "page_token", "status"}
    assert contract_queries()["/params", "post"] == {"train_batch_size", "optimizer", "line_length"}
    assert contract_queries()["/jobs/{job_id}", "get"] == frozenset()


def test_unknown_parameters_of_list_jobs_are_named(idle_app, spec):
    client = idle_app.test_client()
    response = client.get("/jobs?limit=2")
    assert response.status_code == 422
    body = response.get_json()
    assert body["errors"] == {"limit": [UNKNOWN]}
    assert body["detail"] == (
        "Unknown query parameter limit: GET /jobs takes page_size, page_token, status."
    )
    assert client.get("/jobs?page_size=2").status_code == 200
    # A known route without parameters says so.
    detail = client.get(f"/jobs/{'0' * 32}?verbose=1").get_json()["detail"]
    assert detail.endswith("GET /jobs/{job_id} takes no query parameters.")


def test_list_jobs_filters_by_status(idle_app, spec):
    client = idle_app.test_client()
    queued = client.post("/train", json={"example": "one_to_one"}).get_json()["id"]
    cancelled = client.post("/train", json={"example": "one_to_one"}).get_json()["id"]
    assert client.post(f"/jobs/{cancelled}/cancel").status_code == 200
    for status, present, absent in (
        ("cancelled", cancelled, queued),
        ("queued", queued, cancelled),
    ):
        response = client.get(f"/jobs?status={status}&page_size=100")
        assert response.status_code == 200
        listed = response.get_json()["jobs"]
        assert {job["status"] for job in listed} == {status}
        ids = [job["id"] for job in listed]
        assert present in ids and absent not in ids
    response = client.get("/jobs?status=done")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "status": ["Must be one of: queued, running, succeeded, failed, cancelled."]
    }


def make_jobs(store, tenant, statuses):
    """Jobs of ``tenant``, oldest first, with these statuses; their ids newest first."""
    ids = []
    for status in statuses:
        ids.append(new_job_id())
        store.create(ids[-1], {"request": {}}, {}, tenant=tenant)
        if status == "cancelled":
            store.cancel(ids[-1])
        time.sleep(0.002)  # distinct creation scores
    return ids[::-1]


def pages(store, tenant, size, status):
    """Every page of a filtered listing, following the cursors to the end."""
    rv, after = [], None
    for _ in range(100):
        page, after = store.page(size, after, ("id",), tenant=tenant, status=status)
        rv.append([job["id"] for job in page])
        if after is None:
            return rv
    raise AssertionError("the cursors never end")


@pytest.fixture
def store(idle_app):
    return idle_app.extensions["jobs"]


def test_a_filtered_listing_has_full_pages(store):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    statuses = ["cancelled", "queued", "queued", "cancelled", "queued", "queued", "cancelled"]
    ids = make_jobs(store, tenant, statuses)
    cancelled = [i for i, s in zip(ids, statuses[::-1], strict=True) if s == "cancelled"]
    queued = [i for i in ids if i not in cancelled]
    assert pages(store, tenant, 2, "cancelled") == [cancelled[:2], cancelled[2:]]
    assert pages(store, tenant, 2, "queued") == [queued[:2], queued[2:]]
    assert pages(store, tenant, 3, "failed") == [[]]
    assert pages(store, tenant, 10, None) == [ids]


def test_a_filtered_page_reads_a_bounded_part_of_the_index(store, monkeypatch):
    monkeypatch.setattr(jobs.store, "PAGE_SCAN", 3)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    statuses = ["cancelled", *["queued"] * 5, "cancelled"]
    ids = make_jobs(store, tenant, statuses)
    newest, oldest = ids[0], ids[-1]
    # Three jobs read a page: past them it is short, its cursor honest.
    assert pages(store, tenant, 2, "cancelled") == [[newest], [], [oldest]]
