"""Errors of the config toolkit that reach a running session: a template that fails to render."""

from __future__ import annotations


class TemplateFailed(Exception):
    """A template or condition raised while rendering (undefined name, sandbox refusal...).

    Raised during a call or a USSD/SMS session, not at load time (load-time problems are
    :class:`~ivr.config.problems.Problem` lines). Hosts catch it beside
    :class:`ivr.flow.errors.FlowError`; ``node`` is the menu node the template belongs to.
    """

    error_id = "template-failed"

    def __init__(self, where: str, source: str, cause: BaseException) -> None:
        self.where = where
        self.source = source
        self.cause = cause
        self.node = where.split(".", 1)[0]
        super().__init__(f"template {where} failed: {type(cause).__name__}: {cause} (at node {self.node!r})")
