"""Callbacks: a customer who would rather not wait is called back when their turn comes.

The request is the customer's (any channel); the place is kept by the voice side, in the
real ``app_queue`` (see docs/callbacks.md). This package holds what every channel shares:
the per-queue policy, the durable record and the service that takes a request.
"""
