"""Routing rules: where a caller who asked for a person goes, and why, from CRM data.

Pure decisions: the host gathers the inputs (customer fields, the last agent from the
journey, the time) and acts on the :class:`~ivr.routing.rules.RouteDecision`.
"""
