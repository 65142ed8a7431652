"""Schemathesis against ``/openapi.json``: generated requests to every operation, with real ids
and with no token or a token of each role, never make the server answer 5xx.

The store holds a registered dataset and model, and a finished and a queued run, so that
generated requests reach past the 404s into the code that reads them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.web.conftest import Web, serving


@pytest.fixture(scope="module")
def fuzz_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Web, dict[str, str]]]:
    with serving(tmp_path_factory.mktemp("fuzz")) as web:
        client, spec, onnx = web.client, web.spec, web.onnx
        auth = web.auth("validator")
        r = client.post(
            "/api/models",
            data={"name": "bright", "spec_text": spec.read_text()},
            files={"file": ("bright.onnx", onnx.read_bytes())},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        body = {"model": "bright", "datasets": ["scans"], "explore": False}
        finished = client.post("/api/runs", json=body, headers=auth).json()[0]["id"]
        assert web.work() >= 1
        queued = client.post("/api/runs", json=body, headers=auth).json()[0]["id"]
        yield (
            web,
            {"dataset": "scans@1", "model": "bright@1", "finished": finished, "queued": queued},
        )


@pytest.fixture(scope="module")
def api_schema(fuzz_web: tuple[Web, dict[str, str]]) -> schemathesis.schemas.BaseSchema:
    web, _ = fuzz_web
    # The schema is read with a token like the rest of the API.
    return schemathesis.openapi.from_asgi(
        "/openapi.json", web.client.app, headers=web.auth("viewer")
    )


ROLES = (None, "viewer", "validator", "admin")


def _call(web: Web, ids: dict[str, str], case: schemathesis.Case) -> None:
    params = case.path_parameters or {}
    rng = random.Random(repr(sorted(params.items())))
    # Real ids half of the time, so that requests get past "not found".
    if "ref" in params and rng.random() < 0.5:
        params["ref"] = ids["model" if "/models/" in case.path else "dataset"]
    if "job_id" in params and rng.random() < 0.5:
        params["job_id"] = ids[rng.choice(["finished", "queued"])]
    if "name" in params and case.method.upper() == "DELETE":
        params["name"] = "not-a-token-of-this-test"  # keep the tokens the test signs in with
    for role in ROLES:
        headers = {} if role is None else web.auth(role)
        case.call_and_validate(headers=headers, checks=[not_a_server_error])


def test_no_generated_request_makes_the_server_fail(
    api_schema: schemathesis.schemas.BaseSchema, fuzz_web: tuple[Web, dict[str, str]]
) -> None:
    web, ids = fuzz_web
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def no_server_error(case: schemathesis.Case) -> None:
            _call(web, ids, case)

        no_server_error()


def test_the_schema_covers_the_api(api_schema: schemathesis.schemas.BaseSchema) -> None:
    """Every route under /api is in the schema the fuzzing runs from."""
    paths = set(api_schema.raw_schema["paths"])
    for path in ("/api/runs", "/api/runs/{run_id}/items", "/api/models", "/api/datasets/{ref}"):
        assert path in paths, sorted(paths)
    assert len(paths) >= 15


def test_fuzz_target_is_the_real_app(fuzz_web: tuple[Web, dict[str, str]]) -> None:
    web, ids = fuzz_web
    r = web.client.get(f"/api/runs/{ids['finished']}", headers=web.auth("viewer"))
    assert r.status_code == 200 and r.json()["status"] == "finished"
    assert isinstance(Path(web.home), Path)
