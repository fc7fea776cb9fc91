"""Key/value notes kept in the outbox beside its rows (an adapter's resume point, say), on both
backends."""

from __future__ import annotations

from jobhooks_core.outbox import Outbox
from tests.core.test_outbox import outbox, reopen  # noqa: F401 - the two-backend fixture


def test_an_unknown_key_has_no_value(outbox: Outbox) -> None:  # noqa: F811
    assert outbox.get_meta("prefect.watch.cursor") is None


def test_a_stored_value_is_read_back_by_another_connection(outbox: Outbox) -> None:  # noqa: F811
    outbox.set_meta("prefect.watch.cursor", '{"occurred": "2027-01-15T12:00:00Z"}')
    other = reopen(outbox)
    try:
        assert other.get_meta("prefect.watch.cursor") == '{"occurred": "2027-01-15T12:00:00Z"}'
    finally:
        other.close()


def test_set_meta_replaces_the_previous_value(outbox: Outbox) -> None:  # noqa: F811
    outbox.set_meta("k", "one")
    outbox.set_meta("k", "two")
    assert outbox.get_meta("k") == "two"


def test_meta_values_leave_the_installation_instant_alone(outbox: Outbox) -> None:  # noqa: F811
    with outbox.transaction(now=1_800_000_000.0) as tx:
        installed = tx.installed_at()
    outbox.set_meta("other", "x")
    with outbox.transaction(now=1_900_000_000.0) as tx:
        assert tx.installed_at() == installed
