"""jobhooks core: job-status events, subscriptions, wire formats and signing.

Orchestrator-neutral: imports neither Airflow nor Prefect. The adapters (jobhooks_airflow,
jobhooks_prefect) translate their orchestrator's state changes into LifecycleSignals.
"""

from __future__ import annotations

from .config import LoadedSubscriptions, load_config_file, load_subscriptions, parse_subscriptions
from .events import Event, Source
from .exceptions import ConfigurationError, JobhooksError, OutboxError, RenderError, SignatureError
from .formats import Rendered, WireFormat, parse_body, render_batch, render_event
from .lifecycle import InMemoryWorkState, LifecycleSignal, Signal, WorkState, events_for
from .runtime import Jobhooks, emit
from .signing import generate_secret, verify, webhook_headers
from .subscriptions import Subscription
from .vocabulary import Mode, SubjectType, Verb

__all__ = [
    "ConfigurationError",
    "Event",
    "InMemoryWorkState",
    "Jobhooks",
    "JobhooksError",
    "LifecycleSignal",
    "LoadedSubscriptions",
    "Mode",
    "OutboxError",
    "RenderError",
    "Rendered",
    "Signal",
    "SignatureError",
    "Source",
    "SubjectType",
    "Subscription",
    "Verb",
    "WireFormat",
    "WorkState",
    "emit",
    "events_for",
    "generate_secret",
    "load_config_file",
    "load_subscriptions",
    "parse_body",
    "parse_subscriptions",
    "render_batch",
    "render_event",
    "verify",
    "webhook_headers",
]
