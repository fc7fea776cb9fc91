"""End to end: DAGs created, changed, paused and removed (no Airflow listener exists for those)
are seen by the scheduler's DAG watcher and reported once per change; DAGs that existed before
jobhooks was installed are not announced."""

from __future__ import annotations

from collections import Counter

from tests.airflow.e2e.conftest import Deployment

PROBE = '''"""A DAG the test adds, changes and removes."""
import datetime as dt

from airflow.sdk import dag, task


@dag(
    dag_id="audience_refresh",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    tags=["jobhooks:subject_type=segmnt"],
)
def audience_refresh():
    @task
    def refresh():
        pass

    @task
    def notify():
        pass

    {flow}


audience_refresh()
'''
V1 = PROBE.format(flow="refresh()")
V2 = PROBE.format(flow="refresh() >> notify()")  # one task more: a new definition


def verbs(deployment: Deployment) -> Counter[str]:
    return Counter(e["verb"] for e in deployment.events(subject_id="audience_refresh"))


def test_a_dag_is_created_updated_paused_deleted_and_created_again(
    deployment: Deployment,
) -> None:
    stack = deployment.stack
    wait = deployment.wait_for_events

    path = stack.add_dag_file("audience_refresh.py", V1)
    (created,) = wait(1, subject_id="audience_refresh", verb="created")
    assert created["data"]["is_paused"] is False and created["data"]["schedule"] == "None"
    assert created["data"]["fileloc"] == "audience_refresh.py"
    assert created["data"]["url"] == f"{stack.base}/dags/audience_refresh"
    # The misspelt subject type tag is logged and the DAG reports as a plain work.
    assert created["subject_type"] == "work"
    assert (
        "DAG 'audience_refresh': tag jobhooks:subject_type=segmnt is not a subject type "
        "(did you mean 'segment'?)" in stack.log("scheduler")
    )

    stack.add_dag_file("audience_refresh.py", V2)  # a new task
    wait(1, subject_id="audience_refresh", verb="update")
    stack.unpause("audience_refresh", paused=True)
    paused = wait(2, subject_id="audience_refresh", verb="update")[-1]
    assert paused["data"]["is_paused"] is True

    path.unlink()
    (deleted,) = wait(1, subject_id="audience_refresh", verb="deleted")
    assert deleted["data"]["dag_id"] == "audience_refresh"

    stack.add_dag_file("audience_refresh.py", V2)  # it comes back
    wait(2, subject_id="audience_refresh", verb="created")
    assert verbs(deployment) == Counter(created=2, update=2, deleted=1)
    ids = [e["id"] for e in deployment.events(subject_id="audience_refresh")]
    assert len(set(ids)) == len(ids)


def test_dags_that_existed_before_jobhooks_are_the_baseline(
    deployment: Deployment, runs: dict[str, str]
) -> None:
    for dag_id, run_id in runs.items():
        deployment.stack.wait_for_run(dag_id, run_id)
        deployment.wait_for_events(1, subject_id=dag_id, run_id=run_id, verb="syncing")
    announced = {e["subject_id"] for e in deployment.events(verb="created")}
    assert not announced & set(runs), "DAGs parsed before jobhooks started were announced"
