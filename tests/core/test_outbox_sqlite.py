"""SQLite-only outbox behaviour: the file's journal mode and what a bad path says."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobhooks_core.exceptions import OutboxError
from jobhooks_core.outbox import SQLiteOutbox, open_outbox


def test_the_outbox_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    SQLiteOutbox(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "home" / "jobhooks" / "outbox.db"
    SQLiteOutbox(path).close()
    assert path.is_file()


def test_a_path_under_a_file_fails_naming_the_path_and_what_to_do(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("not a directory")
    path = not_a_directory / "outbox.db"
    with pytest.raises(OutboxError) as info:
        SQLiteOutbox(path)
    message = str(info.value)
    assert str(path) in message
    assert "writable" in message and "JOBHOOKS_OUTBOX" in message


def test_open_outbox_accepts_a_path_or_a_sqlite_url(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a.db"), f"sqlite:///{tmp_path / 'b.db'}"):
        box = open_outbox(url)
        assert isinstance(box, SQLiteOutbox)
        box.close()
    assert (tmp_path / "a.db").is_file() and (tmp_path / "b.db").is_file()
