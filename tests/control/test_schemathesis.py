"""Property-based requests made from the management API's own OpenAPI document
(schemathesis) against a real control process: whatever they send, no answer is a 5xx, and
every answer's status and body are what the document declares.

Bounded: a few examples per operation (SCHEMATHESIS_EXAMPLES, default 10; 60 found nothing more), derandomized, no
shrinking past a minute; the suite runs it once per run (and once more 400 days ahead)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from adserver.control import openapi
from tests.procs import ADMIN_KEY, env_for, running

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
# model uploads are archives: the generated body is sent as the bytes it is (or nothing)
schemathesis.serializer.alias(["application/gzip", "application/x-tar"], "application/octet-stream")
schema = schemathesis.openapi.from_dict(openapi.document())


@pytest.fixture(scope="module")
def control_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A control process of its own: the generated requests create, change and archive."""
    data = tmp_path_factory.mktemp("schemathesis")
    with running(["control", "--api-port", "0"], env_for(str(data))) as proc:
        yield proc.url


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_answer_as_documented(
    case: schemathesis.Case, control_url: str
) -> None:
    case.call_and_validate(
        base_url=control_url,
        headers={"X-Api-Key": ADMIN_KEY},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        timeout=30,
    )
