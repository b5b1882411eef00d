"""Schemathesis against the real app: no 5xx, and every response matches the OpenAPI schema.

Every operation in the app's OpenAPI document is fuzzed over real HTTP (the app under uvicorn
with its lifespan, a fresh Postgres database): user routes with a normal user's token, admin
routes with the admin's. Checks: no server error; the status code, content type and body are
the documented ones (errors included: `{"error": {"code", "message", "details"?}}`); and input
the schema calls invalid is refused with a 4xx.

Destructive routes cannot hurt the run: fuzzed ids are random UUIDs that match nothing (the
real ids below are swapped in only for non-DELETE operations), and the module has its own
database, so nothing here leaks into other tests.

Schemathesis' "coverage" phase (boundary and wrong-type values for every field) costs about
70 s of CPU at *collection* on a 2-core machine, so it runs only with FUZZ_COVERAGE=1; the
examples and fuzzing phases (positive and negative data) always run, 20 examples per operation
unless FUZZ_EXAMPLES says otherwise.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import Seeded

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))  # raise it to hunt: FUZZ_EXAMPLES=300


def _openapi() -> dict:
    from allin.config import Settings
    from api.app import create_app

    # Building the app touches nothing (the lifespan does); only its OpenAPI document is used here.
    return create_app(Settings(_env_file=None, database_url="postgresql://unused/unused")).openapi()


schema = schemathesis.openapi.from_dict(_openapi(), config=SchemathesisConfig())
# Unknown query parameters are ignored by design (as HTTP APIs do), not "invalid input";
# the bearer header is ours to set (per user below), not one to fuzz.
schema.config.generation.update(allow_extra_parameters=True, with_security_parameters=False)
schema.config.phases.coverage.enabled = os.environ.get("FUZZ_COVERAGE") == "1"

# Not fuzzed: the web page, /static and /metrics, which are not in the schema (include_in_schema=False).
user_schema = schema.exclude(path_regex="^/admin")
admin_schema = schema.include(path_regex="^/admin")
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def _aim_at_real_ids(case, seeded: Seeded) -> None:
    """Point valid cases at alice's real chat and turns, so the fuzzer reaches past the 404s.

    Only for positive cases (a negative one must keep its invalid value) and never for DELETE
    (it would remove the chat the other operations aim at).
    """
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE or case.method == "DELETE":
        return
    if "chat_id" in case.path_parameters:
        case.path_parameters["chat_id"] = str(seeded.chat_id)
    if "turn_id" in case.path_parameters:
        case.path_parameters["turn_id"] = str(seeded.answer_id)  # feedback is given on answers
    if isinstance(case.body, dict):
        if "chat_id" in case.body:
            case.body["chat_id"] = str(seeded.chat_id)
        if "turn_id" in case.body:
            case.body["turn_id"] = str(seeded.question_id)  # a fork starts from a question


@user_schema.parametrize()
@FUZZ
def test_user_routes(case, fuzz_server, fuzz_users, fuzz_seeded):
    _aim_at_real_ids(case, fuzz_seeded)
    case.call_and_validate(base_url=fuzz_server.url, headers=fuzz_users.alice.headers, checks=CHECKS)


@admin_schema.parametrize()
@FUZZ
def test_admin_routes(case, fuzz_server, fuzz_users):
    case.call_and_validate(base_url=fuzz_server.url, headers=fuzz_users.admin.headers, checks=CHECKS)
