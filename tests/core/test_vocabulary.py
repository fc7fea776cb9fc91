"""The vocabulary is exactly the job-status document's: 9 verbs, 25 subject types, modes."""

from __future__ import annotations

import logging

import pytest

from jobhooks_core import Mode, SubjectType, Verb
from jobhooks_core.vocabulary import close_match, subject_type_from_tags, verbs_for_mode

R, B = Mode.REALTIME, Mode.BATCH


def test_verbs_and_their_modes_are_the_documents_table() -> None:
    assert {v.value: set(v.modes) for v in Verb} == {
        "synccomplete": {R},
        "update": {R, B},
        "created": {R, B},
        "deleted": {R, B},
        "synced": {R},
        "completed": {B},
        "started": {R, B},
        "failed": {R, B},
        "syncing": {R},
    }


def test_the_25_subject_types() -> None:
    assert [s.value for s in SubjectType] == [
        "account",
        "auth",
        "campaign",
        "data",
        "entity",
        "experience",
        "journey",
        "program",
        "provider",
        "query",
        "report",
        "rollup",
        "schema",
        "schematable",
        "scoring",
        "segment",
        "segmentcollection",
        "segmentml",
        "stream",
        "subscription",
        "topic-document",
        "user",
        "variation",
        "work",
        "workflow",
    ]


def test_verbs_for_each_mode() -> None:
    assert verbs_for_mode(B) == {
        Verb.UPDATE,
        Verb.CREATED,
        Verb.DELETED,
        Verb.COMPLETED,
        Verb.STARTED,
        Verb.FAILED,
    }
    assert verbs_for_mode(R) == set(Verb) - {Verb.COMPLETED}


def test_mode_descriptions_used_in_errors() -> None:
    assert Verb.COMPLETED.describe_modes() == "batch-only"
    assert Verb.SYNCED.describe_modes() == "realtime-only"
    assert Verb.FAILED.describe_modes() == "realtime and batch"


def test_close_match_suggests_misspellings_only_when_close() -> None:
    assert close_match("faild", [v.value for v in Verb]) == "failed"
    assert close_match("synccomplet", [v.value for v in Verb]) == "synccomplete"
    assert close_match("banana", [v.value for v in Verb]) is None


def test_the_subject_type_tag_sets_the_subject_type_case_insensitively() -> None:
    assert subject_type_from_tags(["nightly", "jobhooks:subject_type=Topic-Document"], "x") is (
        SubjectType.TOPIC_DOCUMENT)
    assert subject_type_from_tags(["nightly"], "x") is SubjectType.WORK


def test_a_bad_or_ambiguous_subject_type_tag_is_logged_and_falls_back_to_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="jobhooks"):
        assert subject_type_from_tags(["jobhooks:subject_type=segmnet"], "DAG 'a'") is (
            SubjectType.WORK)
        assert "did you mean 'segment'?" in caplog.text and "DAG 'a'" in caplog.text
        assert subject_type_from_tags(["jobhooks:subject_type=user",
                                       "jobhooks:subject_type=report"], "b") is SubjectType.WORK
        assert "several" in caplog.text
