"""The DAG watcher against a real Airflow metadata DB: DAGs parsed by Airflow itself
(``airflow dags reserialize``), then paused, marked stale or deleted the way Airflow does."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobhooks_airflow.watcher import DagWatcher, read_dags
from jobhooks_core import Jobhooks, Source
from jobhooks_core.settings import Settings
from jobhooks_core.subscriptions import Subscription

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG = """
import datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG({dag_id!r}, schedule=None, start_date=dt.datetime(2026, 1, 1), tags={tags!r}):
    EmptyOperator(task_id="only")
"""


def airflow(*args: str, dags: Path) -> None:
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    subprocess.run([AIRFLOW, *args], env=env, check=True, capture_output=True, timeout=300)


def write_dag(dags: Path, dag_id: str, tags: list[str] | None = None) -> None:
    (dags / f"{dag_id}.py").write_text(DAG.format(dag_id=dag_id, tags=tags or []))


@pytest.fixture(scope="module")
def dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dags")
    airflow("db", "migrate", dags=folder)
    for dag_id in ("legacy_report", "legacy_export", "retired_import"):
        write_dag(folder, dag_id, ["jobhooks:subject_type=report"])
    airflow("dags", "reserialize", dags=folder)
    set_dag("retired_import", is_stale=True)  # gone before jobhooks was installed
    return folder


def set_dag(dag_id: str, **values: object) -> None:
    import sqlalchemy as sa
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(sa.update(DagModel).where(DagModel.dag_id == dag_id).values(**values))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Jobhooks]:
    sub = Subscription("catalog", "http://127.0.0.1:9/never-delivered")
    jobhooks = Jobhooks(
        settings=Settings(home=tmp_path),
        source=Source("airflow", "t"),
        subscriptions=[sub],
        long_lived=True,
    )
    yield jobhooks
    jobhooks.close()


def verbs(runtime: Jobhooks) -> list[tuple[str, str]]:
    rows = runtime.outbox.deliveries(limit=1000)
    return sorted((json.loads(r.event_json)["verb"], r.event["subject_id"]) for r in rows)


def test_dags_are_read_with_revision_creation_time_and_tags(dags: Path) -> None:
    rows = read_dags()
    row = rows["legacy_report"]
    assert row["revision"].endswith(":paused") and len(row["revision"]) > 32  # at creation
    assert row["created_at"] < dt.datetime.now(dt.UTC)
    assert row["tags"] == ["jobhooks:subject_type=report"] and row["version"] == 1
    assert rows["retired_import"]["stale"] is True


def test_the_watcher_reports_each_change_once(
    dags: Path, runtime: Jobhooks, tmp_path: Path
) -> None:
    with runtime.outbox.transaction() as tx:
        tx.installed_at()  # jobhooks is installed now: the DAGs above are the baseline
    watcher = DagWatcher(None, 60)  # type: ignore[arg-type]
    assert watcher.scan(runtime) == 2  # seen: legacy_*; the stale one was gone before
    assert verbs(runtime) == []

    set_dag("legacy_report", is_paused=False)
    write_dag(dags, "new_feed")
    airflow("dags", "reserialize", dags=dags)
    watcher.scan(runtime)
    assert verbs(runtime) == [("created", "new_feed"), ("update", "legacy_report")]
    assert watcher.scan(runtime) == 0  # nothing changed since: nothing reported

    set_dag("legacy_export", is_stale=True, last_parsed_time=dt.datetime.now(dt.UTC))
    watcher.scan(runtime)
    assert ("deleted", "legacy_export") in verbs(runtime)

    # A new scheduler (a restart) sees the DAG stale that it never saw active: it was removed
    # after jobhooks was installed, so it is reported, once, thanks to the outbox's facts.
    restarted = DagWatcher(None, 60)  # type: ignore[arg-type]
    restarted.scan(runtime)
    assert verbs(runtime).count(("deleted", "legacy_export")) == 1
    assert ("deleted", "retired_import") not in verbs(runtime)
