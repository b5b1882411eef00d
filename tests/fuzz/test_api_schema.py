"""Schemathesis against the real app: no 5xx, and every response matches the OpenAPI schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


def _openapi() -> dict:
    from allin.config import Settings
    from api.app import create_app

    # Building the app touches nothing (the lifespan does); only its OpenAPI document is used here.
    return create_app(Settings(_env_file=None, database_url="postgresql://unused/unused")).openapi()


schema = schemathesis.openapi.from_dict(_openapi(), config=SchemathesisConfig())
# Unknown query parameters are ignored by design (as HTTP APIs do), not "invalid input";
# the bearer header is ours to set (per user below), not one to fuzz.
schema.config.generation.update(allow_extra_parameters=True, with_security_parameters=False)


@schema.exclude(path_regex="^/admin").parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_user_routes(case, fuzz_server, fuzz_users):
    case.call_and_validate(base_url=fuzz_server.url, headers=fuzz_users.alice.headers, checks=CHECKS)


@schema.include(path_regex="^/admin").parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_admin_routes(case, fuzz_server, fuzz_users):
    case.call_and_validate(base_url=fuzz_server.url, headers=fuzz_users.admin.headers, checks=CHECKS)
