"""The payload size cap: an event whose JSON is larger than ``max_payload_bytes`` is cut to fit.

Applied once, when the event is enqueued, by one deterministic rule (README, "Event data: types
and size limit"):

1. The longest strings in ``data`` are cut first, all down to one common length (the largest
   that fits), each keeping its beginning and its end around a ``…[truncated N bytes]…``
   marker (N: the UTF-8 bytes removed), and ``data`` gains ``"jobhooks_truncated"``.
2. If cutting every string cannot make it fit (a huge list of numbers, say), ``data`` becomes
   ``{"jobhooks_truncated": {…, "dropped_keys": [...]}}``, naming the top-level keys dropped.

The event keeps its id, verb, subject type, subject id, timestamp and source: it is always
delivered, still validates, and a receiver can tell it was cut.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .events import Event, data_path
from .formats import event_json

__all__ = ["FLAG", "Cut", "fit"]

FLAG = "jobhooks_truncated"  # the key a cut event's data gains
MAX_KEY_CHARS = 64  # characters of each dropped key named in the stub


@dataclass(frozen=True)
class Cut:
    """How an event was cut to fit: sizes in bytes of its JSON, and what was cut or dropped."""

    original_bytes: int
    final_bytes: int
    strings_cut: int = 0
    longest: tuple[str, ...] = ()  # where the (up to 5) longest cut strings were: data['error']
    dropped_keys: tuple[str, ...] = ()  # top-level keys replaced by the stub

    def describe(self, event: Event, max_bytes: int) -> str:
        """One log line: which event, its sizes, what was cut."""
        subject = event.subject_id if len(event.subject_id) <= 80 else event.subject_id[:79] + "…"
        what = (
            f"event {event.id} ({event.type} for {subject!r}) is {self.original_bytes} bytes, "
            f"over JOBHOOKS_MAX_PAYLOAD_BYTES={max_bytes}: "
        )
        if self.strings_cut:
            more = ", …" if self.strings_cut > len(self.longest) else ""
            what += f"cut {self.strings_cut} string(s) ({', '.join(self.longest)}{more})"
        else:
            keys = ", ".join(repr(k) for k in self.dropped_keys[:5])
            more = ", …" if len(self.dropped_keys) > 5 else ""
            what += f"dropped its data ({len(self.dropped_keys)} key(s): {keys}{more})"
        if self.final_bytes > max_bytes:
            return f"{what}; still {self.final_bytes} bytes: its subject id or source is too big"
        return f"{what}; sending {self.final_bytes} bytes"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def fit(event: Event, max_bytes: int, text: str | None = None) -> tuple[Event, Cut | None]:
    """``event`` unchanged and None when its JSON (``text``, if already made) fits in
    ``max_bytes``; else the cut event."""
    text = event_json(event) if text is None else text
    if len(text) * 4 <= max_bytes:  # fast path: UTF-8 needs at most 4 bytes a character
        return event, None
    size = _size(text)
    if size <= max_bytes:
        return event, None
    data = {k: v for k, v in event.data.items() if k != FLAG}
    cut = _cut_strings(event, data, size, max_bytes)
    if cut is not None:
        return cut
    return _stub(event, data, size, max_bytes)


@dataclass
class _String:
    path: tuple[Any, ...]
    text: str
    json_bytes: int  # its size as a JSON string, quotes and escapes included
    utf8_bytes: int


def _strings(value: Any, path: tuple[Any, ...] = ()) -> Iterator[_String]:
    if isinstance(value, str):
        yield _String(path, value, _size(_dumps(value)), _size(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _shorten(s: _String, keep: int) -> str:
    """``s`` cut to ``keep`` characters, its beginning and end around the marker."""
    head, tail = s.text[: (keep + 1) // 2], s.text[len(s.text) - keep // 2 :]
    removed = s.utf8_bytes - _size(head) - _size(tail)
    return f"{head}…[truncated {removed} bytes]…{tail}"


def _flag(original: int, max_bytes: int, **more: Any) -> dict[str, Any]:
    return {"original_bytes": original, "max_payload_bytes": max_bytes, **more}


def _cut_strings(
    event: Event, data: dict[str, Any], size: int, max_bytes: int
) -> tuple[Event, Cut] | None:
    strings = sorted(_strings(data), key=lambda s: -len(s.text))  # stable: data order on ties
    base = _size(event_json(dataclasses.replace(event, data=data)))

    def shortened(keep: int) -> tuple[int, dict[tuple[Any, ...], str]]:
        total, cuts = base, dict[tuple[Any, ...], str]()
        for s in strings:
            if len(s.text) <= keep:
                break
            short = _shorten(s, keep)
            saved = s.json_bytes - _size(_dumps(short))
            if saved > 0:
                total -= saved
                cuts[s.path] = short
        flag = _flag(size, max_bytes, strings_cut=len(cuts))
        return total + _size(f',"{FLAG}":{_dumps(flag)}'), cuts

    if not strings or shortened(0)[0] > max_bytes:
        return None
    low, high = 0, len(strings[0].text) - 1  # shortened(low) fits; find the largest that does
    while low < high:
        middle = (low + high + 1) // 2
        if shortened(middle)[0] <= max_bytes:
            low = middle
        else:
            high = middle - 1
    _, cuts = shortened(low)
    new = _replace(data, (), cuts)
    new[FLAG] = _flag(size, max_bytes, strings_cut=len(cuts))
    result = dataclasses.replace(event, data=new)
    final = _size(event_json(result))
    if final > max_bytes:  # cannot happen when the arithmetic above is right; stay safe
        return None
    longest = tuple(data_path(p) for p in list(cuts)[:5])
    return result, Cut(size, final, strings_cut=len(cuts), longest=longest)


def _replace(value: Any, path: tuple[Any, ...], cuts: dict[tuple[Any, ...], str]) -> Any:
    if isinstance(value, str):
        return cuts.get(path, value)
    if isinstance(value, dict):
        return {k: _replace(v, (*path, k), cuts) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, (*path, i), cuts) for i, v in enumerate(value)]
    return value


def _stub(event: Event, data: dict[str, Any], size: int, max_bytes: int) -> tuple[Event, Cut]:
    """Data replaced by the flag naming the dropped top-level keys (as many as fit)."""
    keys = [k if len(k) <= MAX_KEY_CHARS else k[: MAX_KEY_CHARS - 1] + "…" for k in data]

    def stubbed(count: int) -> Event:
        flag = _flag(size, max_bytes, dropped_keys=keys[:count], keys_dropped=len(keys))
        return dataclasses.replace(event, data={FLAG: flag})

    result = stubbed(0)
    room = max_bytes - _size(event_json(result))
    count = 0
    for key in keys:  # each named key costs its JSON string and a comma
        room -= _size(_dumps(key)) + 1
        if room < 0:
            break
        count += 1
    if count:
        result = stubbed(count)
    return result, Cut(size, _size(event_json(result)), dropped_keys=tuple(keys))
