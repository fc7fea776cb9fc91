"""Subscription defaults and filter matching (subject types, subject id globs, verbs, mode)."""

from __future__ import annotations

import fnmatch

from hypothesis import given
from hypothesis import strategies as st

from jobhooks_core import Event, Mode, Source, SubjectType, Subscription, Verb, WireFormat

URL = "https://hooks.example.com/jobs"
SOURCE = Source("airflow", "prod", "3.3.2")


def make_event(
    verb: Verb = Verb.FAILED,
    subject_type: SubjectType = SubjectType.WORK,
    subject_id: str = "daily_export",
) -> Event:
    return Event.create(verb, subject_type, subject_id, source=SOURCE, occurrence="run-1")


def test_defaults_receive_every_realtime_verb_of_every_subject() -> None:
    sub = Subscription.from_mapping("all", {"url": URL})
    assert sub.mode is Mode.REALTIME and sub.format is WireFormat.JSON
    assert sub.batch_size == 100 and sub.batch_flush_seconds == 60 and sub.timeout_seconds == 10
    assert sub.enabled and sub.secrets == () and dict(sub.headers) == {}
    assert sub.verbs == {v for v in Verb if v is not Verb.COMPLETED}
    assert sub.matches(make_event(Verb.SYNCED, SubjectType.SEGMENT, "anything"))
    assert not sub.matches(make_event(Verb.COMPLETED))


def test_batch_default_receives_only_batch_verbs() -> None:
    sub = Subscription.from_mapping("b", {"url": URL, "mode": "batch"})
    assert sub.verbs == {
        Verb.UPDATE,
        Verb.CREATED,
        Verb.DELETED,
        Verb.COMPLETED,
        Verb.STARTED,
        Verb.FAILED,
    }
    assert sub.matches(make_event(Verb.COMPLETED))
    assert not sub.matches(make_event(Verb.SYNCCOMPLETE))


def test_subject_id_globs_match_shell_style_and_case_sensitively() -> None:
    sub = Subscription.from_mapping("g", {"url": URL, "subject_ids": ["export_*", "nightly"]})
    assert sub.matches(make_event(subject_id="export_segments"))
    assert sub.matches(make_event(subject_id="nightly"))
    assert not sub.matches(make_event(subject_id="Export_segments"))
    assert not sub.matches(make_event(subject_id="nightly_2"))


def test_comma_separated_strings_are_accepted_as_lists() -> None:
    sub = Subscription.from_mapping(
        "c", {"url": URL, "verbs": "failed, started", "subject_types": "segment,work"}
    )
    assert sub.verbs == {Verb.FAILED, Verb.STARTED}
    assert sub.subject_types == {SubjectType.SEGMENT, SubjectType.WORK}


def test_values_are_case_insensitive_for_vocabulary() -> None:
    sub = Subscription.from_mapping("c", {"url": URL, "verbs": ["FAILED"], "mode": "Realtime"})
    assert sub.verbs == {Verb.FAILED}


def test_disabled_subscription_matches_nothing() -> None:
    sub = Subscription.from_mapping("off", {"url": URL, "enabled": False})
    assert not sub.matches(make_event())


def test_string_booleans_and_numbers_from_connection_extras_are_accepted() -> None:
    sub = Subscription.from_mapping(
        "x", {"url": URL, "enabled": "false", "batch_size": "5", "timeout_seconds": "2.5"}
    )
    assert sub.enabled is False and sub.batch_size == 5 and sub.timeout_seconds == 2.5


def test_secrets_are_not_in_repr_or_describe() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sub = Subscription.from_mapping("s", {"url": URL, "secret": [secret, secret]})
    assert sub.secrets == (secret, secret)
    assert secret not in repr(sub)
    assert secret not in str(sub.describe())
    assert sub.describe()["secrets"] == 2


def test_space_separated_secret_string_means_rotation() -> None:
    a = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    b = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    sub = Subscription.from_mapping("s", {"url": URL, "secret": f"{a} {b}"})
    assert sub.secrets == (a, b)


def test_extra_headers_are_kept() -> None:
    sub = Subscription.from_mapping("h", {"url": URL, "headers": {"Authorization": "Bearer t"}})
    assert dict(sub.headers) == {"Authorization": "Bearer t"}


# -- property: matching is exactly the conjunction of the three filters and the mode --------

verbs = st.sampled_from(list(Verb))
subject_types = st.sampled_from(list(SubjectType))
ids = st.text(alphabet="abc_*?", min_size=1, max_size=6)


@given(
    mode=st.sampled_from(list(Mode)),
    chosen_verbs=st.none() | st.sets(verbs, min_size=1),
    chosen_types=st.none() | st.sets(subject_types, min_size=1),
    patterns=st.none() | st.lists(ids, min_size=1, max_size=3),
    verb=verbs,
    subject_type=subject_types,
    subject_id=st.text(alphabet="abc_", min_size=1, max_size=6),
)
def test_matching_is_the_conjunction_of_the_filters(
    mode: Mode,
    chosen_verbs: set[Verb] | None,
    chosen_types: set[SubjectType] | None,
    patterns: list[str] | None,
    verb: Verb,
    subject_type: SubjectType,
    subject_id: str,
) -> None:
    fields: dict[str, object] = {"url": URL, "mode": mode.value}
    if chosen_verbs is not None:
        chosen_verbs = {v for v in chosen_verbs if mode in v.modes} or None
        if chosen_verbs:
            fields["verbs"] = sorted(v.value for v in chosen_verbs)
    if chosen_types is not None:
        fields["subject_types"] = sorted(t.value for t in chosen_types)
    if patterns is not None:
        fields["subject_ids"] = patterns
    sub = Subscription.from_mapping("p", fields)
    event = make_event(verb, subject_type, subject_id)

    expected = (
        mode in verb.modes
        and (chosen_verbs is None or verb in chosen_verbs)
        and (chosen_types is None or subject_type in chosen_types)
        and (patterns is None or any(fnmatch.fnmatchcase(subject_id, p) for p in patterns))
    )
    assert sub.matches(event) is expected


@given(verb=verbs, mode=st.sampled_from(list(Mode)))
def test_a_subscription_never_receives_a_verb_its_mode_cannot_carry(verb: Verb, mode: Mode) -> None:
    sub = Subscription.from_mapping("m", {"url": URL, "mode": mode.value})
    assert sub.matches(make_event(verb)) is (mode in verb.modes)
