"""The JSON API against its own OpenAPI document, property-based (schemathesis, on the WSGI app directly).

Schemathesis reads ``/api/openapi.json`` and, for every operation, generates requests from
the schemas, valid and invalid (random strings, numbers at the edges, missing and extra
fields, wrong types), sends them with the owner's token, and checks each answer: never a
5xx, a status and content type the document lists, a body that matches its schema, and
schema-breaking input refused with a 4xx.

One check is left out, on purpose: "schema-valid requests are accepted". Our schemas
describe the *shape* of a request; the rules (a title's length, an end after the start,
a room password of 4 to 128 characters, a room that is open) live in the services, as
for the pages, and answer 422 or 403 with a problem document naming the field. Copying
every rule into the schemas would make two places to keep in step, and some (an end
after the start) cannot be said in JSON Schema at all. Room codes in the path are room A's (the
owner's), so the operations reach their services instead of stopping at a 404; ids are
left random. Bounded: a few examples per operation and mode, no deadline, so it adds seconds.

It runs on both backends: PostgreSQL refuses what SQLite stores (a NUL in text, for one), and the
form crawl of tests/test_hostile_input.py leaves the API to this test.

(Schemathesis's own pytest plumbing, ``schemathesis.pytest.from_fixture``, does not run
under pytest 9 yet; its Hypothesis strategies do, so each operation gets a ``@given`` here.)
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from support.app import fast_app_fixture
from support.world import build_world

# Per operation and mode: ~25 operations x 2 modes x 6 requests, the same ones every run. For a deeper, random
# search now and then: API_FUZZ_EXAMPLES=200 .venv/bin/pytest tests/test_api_schema.py
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "6"))
DERANDOMIZE = "API_FUZZ_EXAMPLES" not in os.environ
schema_app = fast_app_fixture()


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_api_keeps_its_own_promises(schema_app, mode):
    world = build_world(schema_app)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", schema_app)
    operations = _operations(schema)
    assert len(operations) >= 25, "every operation of the API is in the document"
    # The token is part of every case (so negative cases do not count "no token" as their flaw, then send it);
    # identity: the WSGI client does not undo Flask-Compress's brotli as an HTTP client would.
    auth = {"Authorization": f"Bearer {world.owner_token}"}
    plain = {"Accept-Encoding": "identity"}
    failures: list[str] = []
    answered: dict[str, set[int]] = {}
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"
        fixed = {"code": world.room_a} if operation.method.upper() != "DELETE" and "{code}" in operation.path else {}

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None, headers=auth))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=DERANDOMIZE,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call_and_validate(headers=plain, excluded_checks=[positive_data_acceptance])
            answered.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, f"{name}: no valid request could be made"
            # Nothing of it can be made invalid: its path is fixed to room A, its token too, and it has no body.
        except Exception as failure:  # collect every operation's failure, not just the first
            failures.append(f"{name}: {failure}")
    assert not failures, "\n\n".join(failures)
    if mode is GenerationMode.POSITIVE:  # the run reached the services, not only the refusals
        succeeded = sorted(label for label, statuses in answered.items() if any(200 <= s < 300 for s in statuses))
        assert len(succeeded) >= 15, f"only these operations ever succeeded: {succeeded}"
