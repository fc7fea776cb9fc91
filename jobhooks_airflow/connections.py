"""Subscriptions kept as Airflow connections of type ``jobhooks``.

The connection's host holds the endpoint URL (a bare host means ``https://host[:port]/schema``),
its password the signing secret(s), its extras the other subscription fields (DESIGN §5 names:
``verbs``, ``subject_types``, ``subject_ids``, ``mode``, ``format``, ``batch_size``,
``batch_flush_seconds``, ``headers``, ``timeout_seconds``, ``enabled``). The connection id is the
subscription's name. Connections are read from wherever Airflow keeps them: environment
variables (URI or JSON), secrets backends, the metadata DB.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import warnings
from collections.abc import Mapping
from typing import Any

from jobhooks_core.config import LoadedSubscriptions, load_subscriptions, parse_subscriptions
from jobhooks_core.exceptions import ConfigurationError
from jobhooks_core.secrecy import sensitive_header

from . import _compat, conf

__all__ = ["connection_fields", "load"]

CONN_TYPE = "jobhooks"
_FORM_PREFIX = f"extra__{CONN_TYPE}__"  # how older connection forms stored their fields


def connection_fields(conn_id: str, conn: Any) -> dict[str, Any]:
    """The subscription fields of one connection object (host, password, port, schema, extra).

    Raises ConfigurationError (naming the connection) when the extras are not a JSON object.
    """
    fields: dict[str, Any] = {}
    raw_extra = getattr(conn, "extra", None) or ""
    if raw_extra.strip():
        try:
            extra = json.loads(raw_extra)
        except ValueError as exc:
            raise ConfigurationError(
                f"the connection's extra is not valid JSON ({exc}); expected an object such as "
                '{"verbs": "failed, completed", "mode": "batch"}',
                subscription=conn_id,
                field="extra",
            ) from exc
        if not isinstance(extra, Mapping):
            raise ConfigurationError(
                f"the connection's extra must be a JSON object, got {type(extra).__name__}",
                subscription=conn_id,
                field="extra",
            )
        for key, value in extra.items():
            if value is None or value == "":
                continue  # a form field left blank: the default applies
            fields[str(key).removeprefix(_FORM_PREFIX)] = value
    if isinstance(fields.get("headers"), str):  # URI-form extras are strings
        try:
            fields["headers"] = json.loads(fields["headers"])
        except ValueError as exc:
            raise ConfigurationError(
                f"is not a JSON object of header names and values ({exc.__class__.__name__} "
                f"at character {getattr(exc, 'pos', '?')}; the value is not shown: it may hold "
                "credentials)",
                subscription=conn_id,
                field="headers",
            ) from None
    url = _url(conn)
    if url:
        fields["url"] = url
    if getattr(conn, "password", None):
        fields["secret"] = conn.password
    _mask_secrets(fields)
    return fields  # unknown keys stay: the core names them (with a close match)


# Where Airflow keeps ``mask_secret``: the Task SDK's masker (task processes; it also tells the
# supervisor), then the core's (scheduler, API server); the first found of each group is used.
_MASKERS = (
    ("airflow.sdk.log", "airflow.sdk.execution_time.secrets_masker"),
    ("airflow._shared.secrets_masker", "airflow.utils.log.secrets_masker"),
)


def _mask_secrets(fields: Mapping[str, Any]) -> None:
    """Register the signing secret(s) and credential-bearing header values with Airflow's
    secrets masker, so a log line that quotes one shows ``***``. Never raises."""
    values: list[str] = []
    secret = fields.get("secret")
    if isinstance(secret, str):
        values += [secret, *secret.replace(",", " ").split()]
    headers = fields.get("headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if isinstance(value, str) and sensitive_header(str(name)):
                values += [value, value.partition(" ")[2]]  # and the token of "Bearer <token>"
    values = [v.strip() for v in values if v and v.strip()]
    if not values:
        return
    for group in _MASKERS:
        for module in group:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    mask = importlib.import_module(module).mask_secret
            except (ImportError, AttributeError):
                continue
            for value in values:
                with contextlib.suppress(Exception):
                    mask(value)
            break


def _url(conn: Any) -> str:
    host = (getattr(conn, "host", None) or "").strip()
    if not host or "://" in host:
        return host
    port = getattr(conn, "port", None)
    schema = (getattr(conn, "schema", None) or "").strip("/")
    return f"https://{host}{f':{port}' if port else ''}/{schema}"


def _read(conn_id: str, required: bool) -> tuple[dict[str, Any] | None, ConfigurationError | None]:
    try:
        conn = _compat.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - any backend failure is a skipped subscription
        variable = f"AIRFLOW_CONN_{conn_id.upper()}"
        if _compat.is_not_found(exc) and os.environ.get(variable):
            # Airflow skips an environment variable it cannot parse as if it were not there.
            return None, ConfigurationError(
                f"{variable} is set but Airflow cannot read it as a connection: it must be a "
                'connection URI or JSON such as {"conn_type": "jobhooks", "host": '
                '"https://…", "extra": {…}} (extra: a JSON object)',
                subscription=conn_id,
            )
        if _compat.is_not_found(exc):
            if not required:
                return None, None
            return None, ConfigurationError(
                "is named in [jobhooks] subscriptions but no Airflow connection with this id "
                "exists (create one of type 'jobhooks': Admin → Connections, "
                f"AIRFLOW_CONN_{conn_id.upper()} or a secrets backend)",
                subscription=conn_id,
            )
        return None, ConfigurationError(
            f"the Airflow connection could not be read: {type(exc).__name__}: {exc}",
            subscription=conn_id,
        )
    conn_type = getattr(conn, "conn_type", None)
    if conn_type and conn_type != CONN_TYPE:
        return None, ConfigurationError(
            f"the Airflow connection has type {conn_type!r}; a subscription needs type "
            f"{CONN_TYPE!r}",
            subscription=conn_id,
        )
    try:
        return connection_fields(conn_id, conn), None
    except ConfigurationError as exc:
        return None, exc


def load() -> LoadedSubscriptions:
    """Every subscription of this deployment: the JOBHOOKS_CONFIG file, then the connections
    named by [jobhooks] subscriptions. A bad one is an error in the result, never raised."""
    required = conf.subscriptions_configured()
    loaded = LoadedSubscriptions()
    for conn_id in conf.subscriptions():
        fields, error = _read(conn_id, required)
        if error is not None:
            loaded = loaded + LoadedSubscriptions(errors=(error,))
        elif fields is not None:
            origin = f"Airflow connection {conn_id}"
            loaded = loaded + parse_subscriptions([(conn_id, fields)], origin=origin)
    return load_subscriptions(loaded, log_errors=False)
