"""The ``jobhooks-subscription`` Block: a subscription kept in Prefect, with the DESIGN §5 fields.

Importing this module registers the Block class with Prefect (the ``prefect.collections`` entry
point imports ``jobhooks_prefect``, so ``prefect server start`` lists it and the UI shows its
form). It imports only Prefect and pydantic at module level: the collection import stays cheap,
and a problem in jobhooks can never stop Prefect from loading its collections.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, ValidationError, model_validator

if TYPE_CHECKING:
    from jobhooks_core.config import LoadedSubscriptions

__all__ = ["BLOCK_TYPE_SLUG", "JobhooksSubscription", "load_block_subscriptions"]

BLOCK_TYPE_SLUG = "jobhooks-subscription"


class JobhooksSubscription(Block):
    """A job-status webhook subscription: where jobhooks POSTs events, and which ones.

    The block document's name is the subscription's name. Field names and defaults are those of
    every other place a subscription is kept (a ``JOBHOOKS_CONFIG`` file, an Airflow connection).
    """

    # Validation errors never echo the input: it holds the signing secret.
    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name: ClassVar[str] = "Jobhooks Subscription"
    _block_type_slug: ClassVar[str] = BLOCK_TYPE_SLUG
    _description: ClassVar[str] = (
        "A job-status webhook subscription for jobhooks: an http(s) endpoint, an optional "
        "Standard Webhooks signing secret, and filters on verbs, subject types and subject ids."
    )
    _code_example: ClassVar[str] = """
```python
from jobhooks_prefect import JobhooksSubscription

JobhooksSubscription(url="https://hooks.example.com/ops", verbs=["failed"]).save("ops-alerts")
```
Then name it in `JOBHOOKS_PREFECT_SUBSCRIPTIONS=ops-alerts`
or `flow_hooks(subscriptions=["ops-alerts"])`.
"""

    url: str = Field(default=..., description="The http(s) endpoint events are POSTed to.")
    secret: SecretStr | None = Field(
        default=None,
        description="Signing secret (whsec_…); several separated by spaces while rotating.",
    )
    subject_types: list[str] | None = Field(
        default=None, description="Subject types to receive (empty: all), e.g. work, segment."
    )
    subject_ids: list[str] | None = Field(
        default=None, description="Subject ids or shell-style globs (empty: all), e.g. export_*."
    )
    verbs: list[str] | None = Field(
        default=None, description="Verbs to receive (empty: every verb the mode can carry)."
    )
    mode: Literal["realtime", "batch"] = Field(
        default="realtime", description="realtime: one request per event; batch: grouped."
    )
    format: Literal["json", "form", "cloudevents"] = Field(
        default="json", description="Wire format of the request body."
    )
    batch_size: int = Field(default=100, description="Batch mode: send when this many wait.")
    batch_flush_seconds: float = Field(
        default=60, description="Batch mode: send when the oldest waited this long (seconds)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers (cannot override webhook-*)."
    )
    timeout_seconds: float = Field(default=10, description="Per-request timeout in seconds.")
    enabled: bool = Field(default=True, description="Whether this subscription receives events.")

    def subscription_fields(self) -> dict[str, Any]:
        """The DESIGN §5 fields as the core's subscription parser takes them (secret revealed)."""
        values = self.model_dump(
            include={
                "url",
                "subject_types",
                "subject_ids",
                "verbs",
                "mode",
                "format",
                "batch_size",
                "batch_flush_seconds",
                "headers",
                "timeout_seconds",
                "enabled",
            }
        )
        values = {k: v for k, v in values.items() if v is not None}
        if self.secret is not None and self.secret.get_secret_value().strip():
            values["secret"] = self.secret.get_secret_value()
        return values

    @model_validator(mode="after")
    def _valid_subscription(self) -> JobhooksSubscription:
        # The same checks as every other place a subscription is kept, with the same messages:
        # a bad value is refused when the block is saved from Python, not at the first event.
        from jobhooks_core.subscriptions import Subscription

        Subscription.from_mapping("this block", self.subscription_fields())
        return self


def _load_one(name: str) -> JobhooksSubscription:
    # _sync=True: Block.load dispatches on context and would hand back a coroutine inside an
    # async flow (its hooks run on the flow's event loop); the hooks want the block itself.
    block = JobhooksSubscription.load(name, _sync=True)  # type: ignore[call-arg]
    assert isinstance(block, JobhooksSubscription)
    return block


def load_block_subscriptions(names: Iterable[str]) -> LoadedSubscriptions:
    """The subscriptions kept in the named blocks; a missing or broken block is an error in the
    result (logged and skipped by the caller), never an exception."""
    from jobhooks_core.config import LoadedSubscriptions, parse_subscriptions
    from jobhooks_core.exceptions import ConfigurationError

    result = LoadedSubscriptions()
    for name in dict.fromkeys(n.strip() for n in names if n and n.strip()):
        origin = f"Prefect block {BLOCK_TYPE_SLUG}/{name}"
        try:
            block = _load_one(name)
            loaded = parse_subscriptions([(name, block.subscription_fields())], origin=origin)
        except Exception as exc:  # noqa: BLE001 - a broken block is reported and skipped
            error = ConfigurationError(f"cannot load {origin}: {_reason(exc)}", subscription=name)
            loaded = LoadedSubscriptions(errors=(error,))
        result = result + loaded
    return result


def _reason(exc: Exception) -> str:
    """Why a block did not load, in one line, never quoting its values (they hold secrets)."""
    if isinstance(exc.__cause__, ValidationError):  # Block.load wraps it in a RuntimeError
        exc = exc.__cause__
    if isinstance(exc, ValidationError):
        problems = []
        for err in exc.errors(include_url=False, include_input=False, include_context=False):
            where = ".".join(str(part) for part in err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            message = message.replace("subscription 'this block', ", "")
            problems.append(f"{where}: {message}" if where else message)
        return "; ".join(problems)
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
