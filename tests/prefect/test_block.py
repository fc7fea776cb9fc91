"""The ``jobhooks-subscription`` Block: registered by the collection entry point, saved and loaded
through a real Prefect server, and driving deliveries signed with its secret."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from prefect import flow
from pydantic import SecretStr, ValidationError
from standardwebhooks import Webhook

from jobhooks_core.signing import generate_secret
from jobhooks_prefect import JobhooksSubscription, flow_hooks
from jobhooks_prefect._block import load_block_subscriptions
from tests.prefect.helpers import Stack


@flow(name="block-flow", **flow_hooks(subscriptions=["block-named-in-code"]))
def block_flow() -> str:
    return "done"


@flow(name="block-env-flow", **flow_hooks())
def block_env_flow() -> str:
    return "done"


def test_the_server_registered_the_block_type_from_the_entry_point(
    prefect_server: dict[str, str],
) -> None:
    # Nothing in this test registered it: `prefect server start` imported the collection.
    answer = httpx.get(f"{prefect_server['PREFECT_API_URL']}/block_types/slug/"
                       "jobhooks-subscription", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["name"] == "Jobhooks Subscription"
    schema = httpx.post(f"{prefect_server['PREFECT_API_URL']}/block_schemas/filter",
                        json={"block_schemas": {"block_type_id": {"any_": [answer.json()["id"]]}}},
                        timeout=10).json()[0]["fields"]
    assert schema["secret_fields"] == ["secret"]  # Prefect masks it in the UI and the API
    assert set(schema["properties"]) >= {
        "url", "secret", "subject_types", "subject_ids", "verbs", "mode", "format",
        "batch_size", "batch_flush_seconds", "headers", "timeout_seconds", "enabled"}


def test_a_saved_block_loads_back_with_its_secret_hidden(prefect_server: dict[str, str]) -> None:
    secret = generate_secret()
    name = f"round-trip-{uuid.uuid4().hex[:8]}"
    JobhooksSubscription(url="https://hooks.example.com/ops", secret=secret, verbs=["failed"],
                         subject_ids=["export_*"], mode="realtime").save(name)
    loaded = JobhooksSubscription.load(name)
    assert isinstance(loaded.secret, SecretStr)
    assert loaded.secret.get_secret_value() == secret and secret not in repr(loaded)
    (sub,) = load_block_subscriptions([name]).subscriptions
    assert sub.name == name and sub.url == "https://hooks.example.com/ops"
    assert sub.secrets == (secret,) and [v.value for v in sub.verbs] == ["failed"]
    assert sub.origin == f"Prefect block jobhooks-subscription/{name}"


def test_a_bad_value_is_refused_on_save_naming_the_field_without_echoing_the_secret() -> None:
    with pytest.raises(ValidationError) as refused:
        JobhooksSubscription(url="https://h.example", verbs=["faild"],
                             secret="whsec_bm90LWEtcmVhbC1zZWNyZXQtYnV0LWxvbmc=")
    text = str(refused.value)
    assert "field 'verbs': 'faild' is not a verb; did you mean 'failed'?" in text
    assert "whsec_" not in text


def test_blocks_named_in_code_deliver_events_signed_with_their_secret(
    local: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBHOOKS_CONFIG")  # only the block's subscription
    secret = generate_secret()
    JobhooksSubscription(url=f"{local.receiver.url}/signed", secret=secret,
                         verbs=["synccomplete"]).save("block-named-in-code", overwrite=True)
    assert block_flow() == "done"
    (request,) = local.receiver.wait_for(1)
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["verb"] == "synccomplete" and payload["subject_id"] == "block-flow"
    assert local.emitted() == {("block-named-in-code", "synccomplete"): 1}


def test_blocks_named_in_the_environment_add_to_the_config_file(
    local: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    JobhooksSubscription(url=f"{local.receiver.url}/from-env", verbs=["started"]).save(
        "block-from-env", overwrite=True)
    monkeypatch.setenv("JOBHOOKS_PREFECT_SUBSCRIPTIONS", " block-from-env , ")
    assert block_env_flow() == "done"
    emitted = local.emitted()
    assert emitted[("block-from-env", "started")] == 1
    assert sum(n for (sub, _), n in emitted.items() if sub == "block-from-env") == 1
    assert emitted[("live", "synccomplete")] == 1  # the config file's subscription still applies
    local.receiver.wait_for(1)
    assert any(r.path == "/from-env" and json.loads(r.body)["verb"] == "started"
               for r in local.receiver.requests)
