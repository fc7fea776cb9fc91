"""The hook behind the ``jobhooks`` connection type: the connection form (Airflow 3.0/3.1 ask
the hook; 3.2+ read the provider's declarative ``conn-fields``) and the UI's "Test" button."""

from __future__ import annotations

import time
from typing import Any

from jobhooks_core.delivery import new_pool, send
from jobhooks_core.events import Event, Source
from jobhooks_core.formats import event_json
from jobhooks_core.outbox import Delivery, Status
from jobhooks_core.subscriptions import Subscription

from . import _compat, conf
from .connections import CONN_TYPE, connection_fields
from .provider import CONN_FIELDS

__all__ = ["JobhooksHook"]


class JobhooksHook(_compat.BaseHook):
    """A subscription kept as an Airflow connection: ``JobhooksHook("ops_alerts").get_conn()``."""

    conn_name_attr = "jobhooks_conn_id"
    default_conn_name = "jobhooks_default"
    conn_type = CONN_TYPE
    hook_name = "jobhooks webhook subscription"

    def __init__(self, jobhooks_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobhooks_conn_id = jobhooks_conn_id

    def get_conn(self) -> Subscription:
        """The validated subscription (raises ConfigurationError naming every bad field)."""
        conn = self.get_connection(self.jobhooks_conn_id)
        fields = connection_fields(self.jobhooks_conn_id, conn)
        origin = f"Airflow connection {self.jobhooks_conn_id}"
        return Subscription.from_mapping(self.jobhooks_conn_id, fields, origin=origin)

    def test_connection(self) -> tuple[bool, str]:
        """POST one test event (subject id ``jobhooks-send-test``) and report the answer."""
        try:
            sub = self.get_conn()
            settings = conf.settings()  # the CA bundle and private-destination guard apply
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
        event = Event.create(
            sorted(sub.verbs)[0],
            sorted(sub.subject_types)[0] if sub.subject_types else "work",
            "jobhooks-send-test",
            source=Source("airflow", "connection-test", _compat.airflow_version()),
            occurrence=str(time.time()),
            data={"test": True, "message": "test delivery from the Airflow connection form"},
        )
        row = Delivery(
            0, sub.name, event.id, event_json(event), Status.PENDING, 0, 0.0, 0.0, batch_id=event.id
        )
        with new_pool(settings) as pool:
            attempt = send(pool, sub, [row])
        if attempt.delivered:
            return True, f"{sub.url} answered {attempt.http_status}: delivered"
        return False, f"{sub.url}: {attempt.error or attempt.http_status}"

    # -- the connection form before Airflow 3.2 ------------------------------------------------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from wtforms import BooleanField, IntegerField, StringField

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            kinds = spec["schema"]["type"]
            field = (
                BooleanField
                if "boolean" in kinds
                else IntegerField
                if "integer" in kinds
                else StringField
            )
            widgets[name] = field(
                spec["label"],
                description=spec["description"],
                default=spec["schema"].get("default"),
            )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from .provider import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }
