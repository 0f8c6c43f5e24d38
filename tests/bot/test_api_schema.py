"""The served OpenAPI document: valid, complete for the lookup API, and true to real answers."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from jobs.auth0 import Auth0Client
from phoneindex.db import make_engine
from phoneindex.store import Store
from tests.bot.api_service import CRM_KEY, LOOKUP, Api, api_service, bearer
from tests.bot.slack_workspace import SHARED, import_sample
from tests.bot.test_slack_live import tenant
from tests.bot.test_web import UNREACHABLE_PG
from tests.fake_auth0 import FakeAuth0

STATUSES = {"200", "400", "401", "413", "429", "503"}


def strict(components: dict[str, Any]) -> dict[str, Any]:
    """The components with no undocumented keys allowed anywhere (the schema says them all)."""
    tight = copy.deepcopy(components)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tight)
    return tight


def conforms(spec: dict[str, Any], method: str, answer: httpx.Response) -> None:
    """The answer's status, headers and body are as the schema documents them."""
    documented = spec["paths"][LOOKUP][method]["responses"][str(answer.status_code)]
    schema = documented["content"]["application/json"]["schema"]
    validator = Draft202012Validator(schema | {"components": strict(spec["components"])})
    validator.validate(answer.json())
    for name, header in documented.get("headers", {}).items():
        assert name.lower() in answer.headers or not header["required"], name


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[tuple[Api, FakeAuth0, dict[str, Any]]]:
    import_sample(store)
    with tenant() as fake:
        client = Auth0Client(
            fake.base_url, fake.client_id, fake.client_secret, audience=fake.audience, max_rps=50
        )
        with api_service(store, tmp_path, auth0=lambda: client) as api:
            spec = api.http.get("/openapi.json").json()
            yield api, fake, spec
        client.close()


def test_the_document_is_valid_openapi_and_documents_the_api_only(
    served: tuple[Api, FakeAuth0, dict[str, Any]],
) -> None:
    api, _fake, spec = served
    validate_spec(spec)

    lookup = spec["paths"][LOOKUP]
    assert set(lookup) == {"get", "post"}
    assert set(lookup["post"]["responses"]) == STATUSES
    assert set(lookup["get"]["responses"]) == STATUSES - {"413"}
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A key from MFA_WHOIS_API_KEYS.",
    }
    assert lookup["post"]["security"] == lookup["get"]["security"] == [{"apiKey": []}]
    body = lookup["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["phone"]
    assert {p["name"] for p in lookup["get"]["parameters"]} == {"phone", "live", "timeout_ms"}
    assert not [p for p in spec["paths"] if p.startswith(("/slack", "/hooks"))]
    docs = api.http.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_every_example_fits_its_schema(served: tuple[Api, FakeAuth0, dict[str, Any]]) -> None:
    _api, _fake, spec = served
    seen = 0
    for operation in spec["paths"][LOOKUP].values():
        for response in operation["responses"].values():
            content = response["content"]["application/json"]
            validator = Draft202012Validator(
                content["schema"] | {"components": strict(spec["components"])}
            )
            for example in content["examples"].values():
                validator.validate(example["value"])
                seen += 1
    assert seen == 17  # 9 on POST, 8 on GET (no 413)


def test_real_answers_fit_the_served_schema(served: tuple[Api, FakeAuth0, dict[str, Any]]) -> None:
    api, fake, spec = served
    found = api.post({"phone": "(415) 555-0100"})
    assert len(found.json()["accounts"]) == 3
    conforms(spec, "post", found)
    conforms(spec, "get", api.http.get(LOOKUP, params={"phone": SHARED}, headers=bearer()))
    empty = api.post({"phone": "+12025550123"})
    assert empty.status_code == 200 and empty.json()["accounts"] == []
    conforms(spec, "post", empty)

    checked = api.post({"phone": SHARED, "live": True}, key=CRM_KEY)
    assert checked.json()["live"]["status"] == "finished"
    conforms(spec, "post", checked)
    fake.delay_next(1, 1.0, "/api/v2/users/")
    timed_out = api.post({"phone": SHARED, "live": True, "timeout_ms": 200}, key=CRM_KEY)
    assert timed_out.json()["live"]["status"] == "timeout"
    conforms(spec, "post", timed_out)

    refusals = {
        400: api.post({"phone": "anonymous"}),
        401: api.post({"phone": SHARED}, key="not-a-key-not-a-key"),
        413: api.http.post(LOOKUP, content=b" " * 70_000, headers=bearer()),
    }
    for status, answer in refusals.items():
        assert answer.status_code == status
        conforms(spec, "post", answer)
    conforms(spec, "get", api.http.get(LOOKUP, params={"phone": "restricted"}, headers=bearer()))
    conforms(spec, "get", api.http.get(LOOKUP, params={"phone": SHARED}))

    while (over := api.post({"phone": SHARED}, key=CRM_KEY)).status_code == 200:
        pass  # crm's own limit is 5
    assert over.status_code == 429
    conforms(spec, "post", over)
    time.sleep(1.0)  # the timed-out check finishes before the tenant goes away


def test_503_fits_the_schema(store: Store, tmp_path: Path) -> None:
    import_sample(store)
    with api_service(store, tmp_path) as api:  # no Auth0 credentials: no live checks
        spec = api.http.get("/openapi.json").json()
        answer = api.post({"phone": SHARED, "live": True})
    assert answer.status_code == 503
    conforms(spec, "post", answer)
    unreachable = Store(make_engine(UNREACHABLE_PG))
    with api_service(unreachable, tmp_path) as api:
        get = api.http.get(LOOKUP, params={"phone": SHARED}, headers=bearer())
        answers = [api.post({"phone": SHARED}), get]
    for answer in answers:
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json() == {"error": "the index cannot answer now; try again shortly"}
    conforms(spec, "post", answers[0])
    conforms(spec, "get", answers[1])
