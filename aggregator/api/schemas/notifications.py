"""Notifications out: the webhook queue as an administrator sees it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

NotificationKind = Literal["filed", "escalated", "owner_notice", "closed"]
DeliveryStatus = Literal["pending", "delivered"]


class NotificationPublic(BaseModel):
    """One notice to one webhook and how its delivery went."""

    id: int
    notification_id: str = Field(description="The X-Streetwatch-Id receivers dedupe on.")
    webhook: str = Field(description="A name from grid.webhooks.")
    kind: NotificationKind
    case_id: int | None
    status: DeliveryStatus = Field(description="delivered once a 2xx answered it.")
    created_at: float = Field(description="Unix seconds.")
    attempts: int = Field(description="POSTs made so far.")
    next_attempt_at: float = Field(description="Unix seconds; when a pending one is tried.")
    delivered_at: float | None
    last_error: str | None = Field(
        description="What the last failed attempt met (HTTP status or error); kept after "
        "delivery as a record of the trouble."
    )
    leased_by: str | None = Field(description="The process sending it right now, if any.")
    payload: dict[str, Any] = Field(description="The JSON body sent (signed).")


class NotificationsPublic(BaseModel):
    total: int = Field(description="Notifications matching the filters.")
    pending: int = Field(description="Of all notifications, those not delivered yet.")
    items: list[NotificationPublic]
