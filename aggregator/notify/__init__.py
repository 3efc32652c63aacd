"""Notifications out: signed webhooks from a durable queue, and escalation of overdue stages."""
