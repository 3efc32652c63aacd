"""Settings of the grid governance loop (issue 15): escalation, webhooks, citizen reports,
the public figures and the map."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

#: What a notification can be about; a webhook may subscribe to some of them only.
NOTIFICATION_KINDS = ("filed", "escalated", "owner_notice", "closed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookConfig(_Strict):
    """A department system (or a shop-owner notice service) told of cases by signed POSTs."""

    url: str = Field(pattern=r"^https?://", description="Where notifications are POSTed.")
    secret_file: Path = Field(
        description="File holding the HMAC-SHA256 key (relative to aggregator.yaml); the "
        "receiver checks X-Streetwatch-Signature with it (docs/protocol.md)."
    )
    kinds: list[str] = Field(
        default_factory=lambda: list(NOTIFICATION_KINDS),
        description="Which notifications it gets: filed, escalated, owner_notice, closed.",
    )
    timeout_s: float = Field(5.0, gt=0, le=60, description="One delivery attempt's limit.")
    max_backoff_s: float = Field(
        300.0, gt=0, description="Retries back off exponentially up to this."
    )


class CitizenConfig(_Strict):
    """Citizen reports: POST /open311/v2/requests.json with a client's api_key."""

    enabled: bool = True
    per_client_per_min: int = Field(
        30, ge=1, description="Reports a client may post a minute; more: 429."
    )
    max_photo_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="Largest photo.")
    max_description_chars: int = Field(1000, ge=1, le=1000)


class PublicConfig(_Strict):
    """The open-supervision page and feed (no login): counts, rates and medians only."""

    enabled: bool = True
    min_count: int = Field(
        5, ge=1, description="Rows counting fewer cases are suppressed (k-anonymity)."
    )


class GridConfig(_Strict):
    escalate_every_s: float = Field(
        60.0, gt=0, description="How often overdue stages are looked for and escalated."
    )
    supervisor_webhooks: list[str] = Field(
        default_factory=list, description="Webhooks told of every escalation (supervisors)."
    )
    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict)
    citizen: CitizenConfig = Field(default_factory=CitizenConfig)
    public: PublicConfig = Field(default_factory=PublicConfig)
    tile_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s\"'<>]*\{z\}[^\s\"'<>]*$",
        description="A map tile URL template ({z}/{x}/{y}) drawn under the grid on connected "
        "sites; unset: the map draws the grid alone, offline.",
    )

    def resolved(self, base: Path) -> GridConfig:
        """Secret files relative to the config's folder."""
        hooks = {
            name: hook.model_copy(
                update={
                    "secret_file": hook.secret_file
                    if hook.secret_file.is_absolute()
                    else base / hook.secret_file
                }
            )
            for name, hook in self.webhooks.items()
        }
        return self.model_copy(update={"webhooks": hooks})
