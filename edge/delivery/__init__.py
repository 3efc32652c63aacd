"""This box's way out: the durable outbox, the ZeroMQ publisher and the evidence uploader."""
