"""``jobhooks prefect watch``: report every flow from the Prefect server's event stream.

Follows ``prefect.flow-run.*``, ``prefect.task-run.*`` and ``prefect.deployment.*`` events, so
it covers flows without hooks, runs that crashed or were cancelled where no hook ran, and the
deployment lifecycle. The point it has read up to is kept in the outbox; after a restart or a
dropped connection it reads what it missed from the server's events API (``/events/filter``)
before following the stream again. Hooks and watcher report a state change with the same event
id (keyed by the Prefect state id), so the outbox keeps one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any
from uuid import UUID

from jobhooks_core.guard import swallowed
from jobhooks_core.lifecycle import LifecycleSignal
from jobhooks_core.runtime import Jobhooks

from ._mapping import (
    FlowRunFacts,
    deployment_signal,
    flow_run_from_event,
    flow_run_signals,
    parse_time,
    related_id,
    state_from_event,
    subject_type_from_tags,
    task_run_signal,
)

__all__ = ["Watcher"]

log = logging.getLogger("jobhooks")

EVENT_PREFIXES = ["prefect.flow-run.", "prefect.task-run.", "prefect.deployment."]
OVERLAP = dt.timedelta(seconds=60)  # re-read before the resume point: events persisted late
SWEEP_SECONDS = 30.0  # re-read recent history this often: events the stream did not carry
SAVE_SECONDS = 1.0
SEEN_MAX = 50_000
CACHE_MAX = 2_000


class Watcher:
    """Turns Prefect server events into lifecycle signals for a long-lived runtime."""

    def __init__(self, runtime: Jobhooks, api_url: str, *, since: dt.datetime | None = None,
                 overlap: dt.timedelta = OVERLAP, sweep_seconds: float = SWEEP_SECONDS,
                 announce: Callable[[str], None] | None = None) -> None:
        self.runtime = runtime
        self.announce = announce or (lambda message: log.info("jobhooks: %s", message))
        self.api_url = api_url
        self.overlap = overlap
        self.sweep_seconds = sweep_seconds
        self.cursor_key = f"prefect.watch.cursor:{api_url}"
        self.handled = 0
        self.connected = asyncio.Event()
        self._since = since
        self._cursor: dt.datetime | None = None
        self._saved: dt.datetime | None = None
        self._saved_at = 0.0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._runs: OrderedDict[str, tuple[FlowRunFacts, dt.datetime | None]] = OrderedDict()

    # -- the resume point -------------------------------------------------------------------
    def start_point(self) -> dt.datetime:
        """Where to read from: ``since``, else the stored resume point less the overlap, else
        now (a first start reports what happens from now on)."""
        now = dt.datetime.now(dt.UTC)
        if self._since is not None:
            return self._since
        stored = self.runtime.outbox.get_meta(self.cursor_key)
        if stored:
            self._cursor = self._saved = parse_time(json.loads(stored).get("occurred"))
        if self._cursor is None:
            self._cursor = now
            self.save(force=True)
            return now
        return self._cursor - self.overlap

    def save(self, force: bool = False) -> None:
        """Store the resume point (at most every SAVE_SECONDS unless ``force``)."""
        if self._cursor is None or self._cursor == self._saved:
            return
        if not force and time.monotonic() - self._saved_at < SAVE_SECONDS:
            return
        with swallowed("saving the watcher's resume point", host="watcher"):
            value = json.dumps({"occurred": self._cursor.isoformat()})
            self.runtime.outbox.set_meta(self.cursor_key, value)
            self._saved, self._saved_at = self._cursor, time.monotonic()

    # -- following the server ---------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Follow the server until ``stop`` is set; reconnects with backoff, never raises."""
        floor = self.start_point()
        follow = asyncio.create_task(self._follow(floor))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({follow, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (follow, stopped):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self.save(force=True)

    async def _follow(self, floor: dt.datetime) -> None:
        from prefect.client.orchestration import get_client
        from prefect.events.clients import get_events_subscriber
        from prefect.events.filters import EventFilter, EventNameFilter

        delay = 1.0
        while True:
            try:
                names = EventNameFilter(prefix=EVENT_PREFIXES)
                async with get_client() as client, get_events_subscriber(
                    filter=EventFilter(event=names), reconnect_on_clean_close=True
                ) as stream:
                    # Subscribed first, so nothing published from now on can slip between the
                    # catch-up read and the stream; the periodic sweep covers late persistence.
                    swept_from = dt.datetime.now(dt.UTC)
                    caught_up = await self._catch_up(client, floor)
                    self.connected.set()
                    self.announce(f"connected to the event stream at {self.api_url}; read "
                                  f"{caught_up} events since {floor.isoformat(timespec='seconds')}")
                    delay = 1.0
                    while True:
                        try:
                            event = await asyncio.wait_for(anext(stream), SAVE_SECONDS)
                        except TimeoutError:
                            event = None
                        if event is not None:
                            await self._handle(client, event, floor)
                        else:
                            self.save(force=True)  # a quiet moment: store where we are
                        if dt.datetime.now(dt.UTC) - swept_from > dt.timedelta(
                            seconds=self.sweep_seconds
                        ):
                            start, swept_from = swept_from, dt.datetime.now(dt.UTC)
                            await self._catch_up(client, max(floor, start - self.overlap))
            except (StopAsyncIteration, Exception) as exc:  # noqa: BLE001 - keep following
                self.connected.clear()
                if self._cursor is not None:
                    floor = max(floor, self._cursor - self.overlap)
                log.warning("jobhooks: the Prefect event stream at %s is unavailable (%s: %s); "
                            "reconnecting in %.0f s", self.api_url, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _catch_up(self, client: Any, since: dt.datetime) -> int:
        """Read the events since ``since`` from the events API, oldest first; how many."""
        from prefect.events.filters import (
            EventFilter,
            EventNameFilter,
            EventOccurredFilter,
            EventOrder,
        )

        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        page = await client.read_events(
            EventFilter(occurred=EventOccurredFilter(since=since, until=until),  # type: ignore[arg-type]
                        event=EventNameFilter(prefix=EVENT_PREFIXES), order=EventOrder.ASC),
            limit=50,
        )
        read = 0
        while page is not None:
            for event in page.events:
                await self._handle(client, event, since)
            read += len(page.events)
            page = await page.get_next_page(client)
        return read

    # -- one event --------------------------------------------------------------------------
    async def _handle(self, client: Any, event: Any, floor: dt.datetime) -> None:
        key = str(event.id)
        if key in self._seen or event.occurred < floor:
            return
        self._seen[key] = None
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        with swallowed(f"reporting Prefect event {event.event} ({event.id})", host="watcher"):
            for signal in await self._signals(client, event):
                self.runtime.signal(signal)
        self.handled += 1
        if self._cursor is None or event.occurred > self._cursor:
            self._cursor = event.occurred
        self.save()

    async def _signals(self, client: Any, event: Any) -> Sequence[LifecycleSignal]:
        name: str = event.event
        if name.startswith("prefect.deployment."):
            found = await self._deployment_signal(client, event)
            return [found] if found else []
        state = state_from_event(event)
        if name.startswith("prefect.flow-run."):
            run, start = await self._flow_run(client, event.resource.id.rsplit(".", 1)[-1], event)
            scheduled = False
            if state.type == "COMPLETED" and run.deployment_id:
                scheduled = await self._scheduled(client, run.deployment_id)
            return flow_run_signals(run, state, start=start or state.timestamp,
                                    scheduled=scheduled)
        if name.startswith("prefect.task-run.") and state.type == "COMPLETED":
            flow_run_id = related_id(event, "flow-run")
            if flow_run_id is None:
                return []  # a task run outside a flow run belongs to no work
            run, _ = await self._flow_run(client, flow_run_id, event)
            task_run = event.payload.get("task_run") or {}
            signal = task_run_signal(run, event.resource.id.rsplit(".", 1)[-1],
                                     event.resource.name or "", state,
                                     start=parse_time(task_run.get("start_time")))
            return [signal] if signal else []
        return []

    async def _flow_run(self, client: Any, flow_run_id: str, event: Any
                        ) -> tuple[FlowRunFacts, dt.datetime | None]:
        """A flow run's facts from the API (cached), else from the event's related resources."""
        from prefect.exceptions import ObjectNotFound
        from prefect.utilities.urls import url_for

        cached = self._runs.get(flow_run_id)
        if cached is not None and cached[1] is not None:
            return cached
        try:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            flow = await client.read_flow(flow_run.flow_id)
            deployment, tags = None, list(flow_run.tags or ())
            if flow_run.deployment_id is not None:
                found = await client.read_deployment(flow_run.deployment_id)
                deployment, tags = found.name, [*tags, *(found.tags or ())]
            facts = FlowRunFacts(
                id=flow_run_id, name=flow_run.name, flow=flow.name, deployment=deployment,
                deployment_id=str(flow_run.deployment_id) if flow_run.deployment_id else None,
                tags=tuple(dict.fromkeys(tags)), url=url_for("flow-run", obj_id=flow_run_id))
            start = flow_run.start_time
        except ObjectNotFound:
            facts, start = flow_run_from_event(flow_run_id, event), None
        self._runs[flow_run_id] = (facts, start)
        while len(self._runs) > CACHE_MAX:
            self._runs.popitem(last=False)
        return facts, start

    async def _scheduled(self, client: Any, deployment_id: str) -> bool:
        """Whether an active schedule stands behind the deployment's runs."""
        from prefect.exceptions import ObjectNotFound

        try:
            found = await client.read_deployment(UUID(deployment_id))
        except ObjectNotFound:
            return False
        return not found.paused and any(s.active for s in found.schedules or ())

    async def _deployment_signal(self, client: Any, event: Any) -> LifecycleSignal | None:
        from prefect.exceptions import ObjectNotFound
        from prefect.utilities.urls import url_for

        deployment_id = event.resource.id.rsplit(".", 1)[-1]
        key = f"prefect.deployment:{deployment_id}"
        known = json.loads(self.runtime.outbox.get_meta(key) or "{}")
        flow = event.resource_in_role["flow"].name if "flow" in event.resource_in_role else None
        flow = flow or known.get("flow") or "unknown-flow"
        name = event.resource.name or known.get("deployment") or deployment_id
        tags: list[str] = known.get("tags", [])
        if event.event != "prefect.deployment.deleted":
            with suppress(ObjectNotFound):
                tags = list((await client.read_deployment(UUID(deployment_id))).tags or ())
            self.runtime.outbox.set_meta(key, json.dumps(
                {"flow": flow, "deployment": name, "tags": tags}))
        extra: dict[str, Any] = {"url": url_for("deployment", obj_id=deployment_id)}
        if event.payload.get("updated_fields"):
            extra["updated_fields"] = list(event.payload["updated_fields"])
        return deployment_signal(
            event.event, str(event.id), flow=flow, deployment=name, deployment_id=deployment_id,
            subject_type=subject_type_from_tags(tags, f"deployment {flow}/{name}"),
            occurred=event.occurred, extra=extra)
