"""The Airflow plugin (entry point ``airflow.plugins``): registers the jobhooks listener.

Airflow loads it in every component and task process; installing the ``jobhooks`` package is
all it takes. Registering twice (entry point and a plugins-folder copy) is a no-op: there is one
listener object per process.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .listener import listener

__all__ = ["JobhooksPlugin"]


class JobhooksPlugin(AirflowPlugin):
    """Job-status webhooks for this Airflow deployment (see ``docs/airflow.md``)."""

    name = "jobhooks"
    listeners = [listener]
