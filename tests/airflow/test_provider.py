"""The provider metadata and the plugin, as Airflow itself loads and validates them."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from importlib.resources import files

import jsonschema

from jobhooks_airflow.provider import CONN_FIELDS, get_provider_info


def airflow_schema(name: str) -> dict:
    return json.loads(files("airflow").joinpath(name).read_text())


def test_provider_info_is_valid_for_airflow() -> None:
    jsonschema.validate(get_provider_info(), airflow_schema("provider_info.schema.json"))


def test_connection_fields_are_valid_declarative_conn_fields() -> None:
    schema = airflow_schema("provider.yaml.schema.json")
    connection_type = schema["properties"]["connection-types"]["items"]
    jsonschema.validate(get_provider_info()["connection-types"][0], connection_type)


def test_the_form_offers_every_subscription_field_kept_in_extras() -> None:
    from jobhooks_core.subscriptions import FIELDS

    assert set(CONN_FIELDS) == set(FIELDS) - {"url", "secret"}  # host and password hold those


def test_airflow_knows_the_connection_type_its_hook_and_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert manager.providers["jobhooks"].data["name"] == "jobhooks"
    hook = ProvidersManagerTaskRuntime().hooks["jobhooks"]
    assert hook is not None and hook.hook_class_name == "jobhooks_airflow.hook.JobhooksHook"
    widgets = {k for k in manager.connection_form_widgets if k.startswith("extra__jobhooks__")}
    assert widgets == {f"extra__jobhooks__{name}" for name in CONN_FIELDS}
    behaviour = manager.field_behaviours["jobhooks"]
    assert behaviour["relabeling"]["host"] == "Webhook URL"


def test_the_jobhooks_section_is_documented_in_airflows_configuration() -> None:
    from airflow.configuration import conf

    options = conf.configuration_description["jobhooks"]["options"]
    assert set(options) == {
        "subscriptions",
        "outbox",
        "instance",
        "flush_timeout",
        "enabled",
        "dag_watch_interval",
        "retention",
        "max_payload_bytes",
        "ca_bundle",
        "refuse_private_destinations",
    }
    assert conf.get("jobhooks", "outbox", fallback=None) is None  # unset: JOBHOOKS_* apply


def test_loading_the_provider_metadata_imports_nothing_from_airflow() -> None:
    # Airflow reads it while it loads its own configuration: importing airflow there would loop.
    code = (
        "import sys, jobhooks_airflow.provider as p; p.get_provider_info(); "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_entry_points_name_the_plugin_and_the_provider() -> None:
    plugin = entry_points(group="airflow.plugins")["jobhooks"].load()
    providers = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "jobhooks"
    ]
    assert plugin.__name__ == "JobhooksPlugin"
    assert [ep.load() for ep in providers] == [get_provider_info]


def test_airflow_loads_the_plugin_with_our_one_listener() -> None:
    from airflow import plugins_manager

    from jobhooks_airflow.listener import listener

    plugins, errors = plugins_manager._get_plugins()
    ours = [p for p in plugins if p.name == "jobhooks"]
    assert len(ours) == 1 and ours[0].listeners == [listener]
    assert not [e for e in errors if "jobhooks" in e]


def test_the_listener_matches_airflows_hook_specs() -> None:
    # pluggy refuses, at registration, a hook implementation whose arguments its spec lacks.
    from airflow._shared.listeners.spec import lifecycle, taskinstance
    from airflow.listeners.listener import ListenerManager
    from airflow.listeners.spec import dagrun

    from jobhooks_airflow.listener import JobhooksListener

    manager = ListenerManager()
    for spec in (lifecycle, taskinstance, dagrun):
        manager.add_hookspecs(spec)
    manager.add_listener(JobhooksListener())
    manager.pm.check_pending()  # and every hook we implement exists


def test_the_task_sdk_takes_the_listener_for_its_task_hooks() -> None:
    from airflow.sdk._shared.listeners.spec import lifecycle, taskinstance
    from airflow.sdk.listener import ListenerManager

    from jobhooks_airflow.listener import JobhooksListener

    manager = ListenerManager()
    for spec in (lifecycle, taskinstance):
        manager.add_hookspecs(spec)
    manager.add_listener(JobhooksListener())
    for name in (
        "on_starting",
        "on_task_instance_success",
        "on_task_instance_failed",
        "before_stopping",
    ):
        assert getattr(manager.pm.hook, name).get_hookimpls(), name
