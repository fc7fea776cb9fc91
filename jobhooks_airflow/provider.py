"""Provider metadata (entry point ``apache_airflow_provider``): the ``jobhooks`` connection type
with its form fields, and the ``[jobhooks]`` configuration section.

Airflow reads this while it loads its own configuration, so it is plain data and imports
nothing from Airflow. The form fields are declared for Airflow 3.2+ (``conn-fields``); older
3.x versions ask the hook class (:mod:`jobhooks_airflow.hook`) instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONN_FIELDS", "get_provider_info"]


def _text(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], **schema},
    }


def _number(label: str, description: str, kind: str, default: float) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], "default": default, "exclusiveMinimum": 0},
    }


# Subscription fields kept in the connection's extras (DESIGN §5); url and secret live in the
# connection's host and password.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "verbs": _text(
        "Verbs",
        "Comma-separated verbs to receive, e.g. 'failed, completed' "
        "(default: every verb the mode carries)",
    ),
    "subject_types": _text(
        "Subject types", "Comma-separated subject types, e.g. 'work, segment' (default: all)"
    ),
    "subject_ids": _text(
        "Subject ids", "Comma-separated DAG ids or globs, e.g. 'export_*' (default: all)"
    ),
    "mode": _text(
        "Mode",
        "realtime: one request per event; batch: events sent together",
        enum=["realtime", "batch"],
        default="realtime",
    ),
    "format": _text(
        "Format",
        "Wire format of each request",
        enum=["json", "form", "cloudevents"],
        default="json",
    ),
    "batch_size": _number(
        "Batch size", "Batch mode: send when this many events wait", "integer", 100
    ),
    "batch_flush_seconds": _number(
        "Batch flush seconds",
        "Batch mode: send when the oldest event waited this long",
        "number",
        60,
    ),
    "timeout_seconds": _number("Timeout (seconds)", "Per request", "number", 10),
    "headers": _text(
        "Extra headers", 'A JSON object, e.g. {"Authorization": "Bearer …"}', format="json"
    ),
    "enabled": {
        "label": "Enabled",
        "description": "Uncheck to stop sending to this endpoint",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
}

_OPTIONS: dict[str, tuple[str, str, str | None]] = {
    # option: (description, type, example); no defaults here, so JOBHOOKS_* variables apply
    "subscriptions": (
        "Comma-separated ids of 'jobhooks' connections to report to. Default: jobhooks_default.",
        "string",
        "ops_alerts, catalog",
    ),
    "outbox": (
        "Where undelivered events wait: a SQLite file shared by the processes of one "
        "machine, or a postgresql:// URL shared by workers on several machines. Default: "
        "$AIRFLOW_HOME/jobhooks/outbox.db.",
        "string",
        "postgresql://jobhooks@db/airflow",
    ),
    "instance": (
        "Names this deployment in each event's source.instance and in event ids. Default: default.",
        "string",
        "prod",
    ),
    "flush_timeout": (
        "Seconds a task process spends delivering its events when the task ends; "
        "kept below [core] task_success_overtime. Default: 5.",
        "float",
        "5",
    ),
    "enabled": (
        "Set to False to turn jobhooks off in every Airflow process. Default: True.",
        "boolean",
        "False",
    ),
    "dag_watch_interval": (
        "Seconds between the scheduler's scans for created, changed and "
        "removed DAGs (and re-reads of the subscriptions). Default: 30.",
        "float",
        "30",
    ),
    "retention": (
        "Seconds a delivered event is kept in the outbox before the scheduler deletes it; "
        "0 keeps delivered events forever. Default: 604800 (7 days).",
        "integer",
        "604800",
    ),
    "max_payload_bytes": (
        "Largest event JSON in bytes; a larger event is cut to fit. Default: 262144.",
        "integer",
        "262144",
    ),
    "ca_bundle": (
        "PEM file of the CA certificates HTTPS endpoints are verified against, instead of "
        "certifi's. Default: none.",
        "string",
        "/etc/ssl/certs/internal-ca.pem",
    ),
    "refuse_private_destinations": (
        "Set to True to refuse endpoints that resolve to loopback, private, link-local or "
        "other non-public addresses. Default: False.",
        "boolean",
        "True",
    ),
}


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager knows about jobhooks."""
    return {
        "package-name": "jobhooks",
        "name": "jobhooks",
        "description": "Job-status webhooks: DAG and task state changes POSTed, signed and "
        "filtered, to the systems around your pipelines.",
        "connection-types": [
            {
                "connection-type": "jobhooks",
                "hook-class-name": "jobhooks_airflow.hook.JobhooksHook",
                "hook-name": "jobhooks webhook subscription",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "Webhook URL", "password": "Signing secret(s)"},
                    "placeholders": {
                        "host": "https://hooks.example.com/airflow",
                        "password": "whsec_… (several, space-separated, while rotating)",
                    },
                },
            }
        ],
        "config": {
            "jobhooks": {
                "description": "Job-status webhooks (jobhooks): see docs/airflow.md.",
                "options": {
                    name: {
                        "description": description,
                        "version_added": None,
                        "type": kind,
                        "example": example,
                        "default": None,
                    }
                    for name, (description, kind, example) in _OPTIONS.items()
                },
            }
        },
    }
