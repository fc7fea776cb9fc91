"""jobhooks for Apache Airflow 3: DAG and task state changes as job-status webhooks.

Usage
-----
``pip install 'jobhooks[airflow]'`` into every Airflow environment (scheduler, dag-processor,
API server, workers), then create a connection of type ``jobhooks`` named
``jobhooks_default`` whose host is the webhook URL::

    airflow connections add jobhooks_default --conn-type jobhooks \\
        --conn-host https://hooks.example.com/airflow --conn-password whsec_… \\
        --conn-extra '{"verbs": "failed, completed", "mode": "batch"}'

The plugin (entry point ``airflow.plugins``) reports task successes from the task process,
DAG runs from the scheduler, and DAGs created, changed or removed from a watcher thread in the
scheduler, which also delivers what task processes left behind.

Configuration
-------------
``[jobhooks]`` in airflow.cfg or ``AIRFLOW__JOBHOOKS__*``: ``subscriptions``, ``outbox``,
``instance``, ``flush_timeout``, ``enabled``, ``dag_watch_interval`` (see
:mod:`jobhooks_airflow.conf` and docs/airflow.md). Importing this package imports nothing from
Airflow: Airflow itself loads the plugin and the provider metadata.
"""

from __future__ import annotations

__all__: list[str] = []
