"""Hypothesis strategies for job-status events: every verb and subject type, awkward ids.

Subject ids and source names include '/', spaces, control and non-ASCII characters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from jobhooks_core.events import Event, Source
from jobhooks_core.vocabulary import SubjectType, Verb

__all__ = ["events", "json_data", "sources", "subject_ids", "timestamps"]

_AWKWARD_IDS = ["daily_export", "flow/deployment", "a b", "データ/書き出し", "ünïcødé 🚀", "%2F"]


def subject_ids() -> st.SearchStrategy[str]:
    """Any text but NUL and lone surrogates, which Event.create refuses."""
    chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    text = st.text(chars, min_size=1, max_size=40)
    return st.sampled_from(_AWKWARD_IDS) | text


def sources() -> st.SearchStrategy[Source]:
    names = st.sampled_from(["airflow", "prefect", "x/y z", "é"]) | st.text(min_size=1)
    return st.builds(Source, orchestrator=names, instance=names, version=st.text(max_size=12))


def timestamps() -> st.SearchStrategy[dt.datetime]:
    offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
        lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
    )
    # A day inside datetime's range either side, so converting to UTC cannot overflow.
    return st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=offsets
    )


def json_data() -> st.SearchStrategy[dict[str, Any]]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
    )
    values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=12,
    )
    return st.dictionaries(st.text(max_size=12), values, max_size=5)


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Any valid event, built the way adapters build them (deterministic id)."""
    return Event.create(
        draw(st.sampled_from(Verb)),
        draw(st.sampled_from(SubjectType)),
        draw(subject_ids()),
        source=draw(sources()),
        occurrence=draw(st.text(max_size=20)),
        data=draw(json_data()),
        timestamp=draw(timestamps()),
    )
