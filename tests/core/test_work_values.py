"""Per-work values in the outbox (WorkState.swap / values) and the runtime's remember/recall,
on both backends: how one process hands a fact to another (a task's error to the scheduler)."""

from __future__ import annotations

from pathlib import Path

from jobhooks_core import Jobhooks, Source
from jobhooks_core.outbox import Outbox
from jobhooks_core.settings import Settings
from tests.core.test_outbox import outbox, reopen  # noqa: F401 - the two-backend fixture


def test_swap_returns_the_previous_value(outbox: Outbox) -> None:  # noqa: F811
    with outbox.transaction() as tx:
        assert tx.swap("airflow/prod/etl", "revision", "a") is None
    with outbox.transaction() as tx:
        assert tx.swap("airflow/prod/etl", "revision", "b") == "a"
    with outbox.transaction() as tx:
        assert tx.swap("airflow/prod/etl", "revision", None) == "b"
        assert tx.swap("airflow/prod/etl", "revision", None) is None


def test_values_are_per_work_and_selected_by_prefix(outbox: Outbox) -> None:  # noqa: F811
    with outbox.transaction() as tx:
        tx.swap("w1", "error/run_1/extract", "boom")
        tx.swap("w1", "error/run_1/load", "bang")
        tx.swap("w1", "error/run_10/load", "other run")
        tx.swap("w2", "error/run_1/extract", "other work")
    other = reopen(outbox)
    try:
        with other.transaction() as tx:
            assert tx.values("w1", "error/run_1/") == {
                "error/run_1/extract": "boom",
                "error/run_1/load": "bang",
            }
            assert tx.values("w1", "error/run_1%") == {}  # no pattern characters
    finally:
        other.close()


def test_a_value_remembered_by_one_runtime_is_recalled_by_another(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    source = Source("airflow", "prod", "3.3.2")
    task = Jobhooks(settings=settings, source=source, subscriptions=[])
    scheduler = Jobhooks(settings=settings, source=source, subscriptions=[], long_lived=True)
    try:
        task.remember("daily_import", "error/r1/load/-1", "ValueError: bad row 7")
        assert scheduler.recall("daily_import", "error/r1/") == {
            "error/r1/load/-1": "ValueError: bad row 7"
        }
        assert scheduler.recall("daily_import", "error/r1/", forget=True) != {}
        assert scheduler.recall("daily_import", "error/r1/") == {}
    finally:
        task.close()
        scheduler.close()


def test_remember_and_recall_never_raise(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    runtime = Jobhooks(
        settings=Settings(home=tmp_path, outbox=str(blocked / "outbox.db")), subscriptions=[]
    )
    runtime.remember("w", "k", "v")
    assert runtime.recall("w", "k") == {}
    assert runtime.failures == 2


def test_disabled_runtime_keeps_nothing(tmp_path: Path) -> None:
    runtime = Jobhooks(settings=Settings(home=tmp_path, enabled=False), subscriptions=[])
    runtime.remember("w", "k", "v")
    assert runtime.recall("w", "k") == {}
    assert not (tmp_path / "outbox.db").exists()
