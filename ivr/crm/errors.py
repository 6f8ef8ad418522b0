"""Typed CRM failures, so the lookup can tell "the CRM is down" from "the CRM sent garbage".

Both end the same way for the caller (the generic menu), but an operator reading the
log needs to know which: one is a network or capacity problem, the other a mapping or
a contract break with the CRM's owners.
"""

from __future__ import annotations

from ivr.errors import ConfigError, IvrError


class CrmError(IvrError):
    """Any failure of the customer directory; ``operation`` names what was being done."""

    error_id = "crm-error"

    def __init__(self, message: str, *, operation: str = "", hint: str = "", error_id: str | None = None) -> None:
        super().__init__(f"{operation}: {message}" if operation else message, hint=hint, error_id=error_id)
        self.operation = operation


class CrmUnavailable(CrmError):
    """The CRM could not be reached or answered with a server error: retry later, the data is fine."""

    error_id = "crm-unavailable"


class CrmBadResponse(CrmError):
    """The CRM answered, but not with something we can read (not JSON, wrong types, bad number)."""

    error_id = "crm-bad-response"


class CustomerInvalid(CrmError):
    """A customer record breaks the rules of :class:`ivr.crm.customer.Customer`."""

    error_id = "crm-customer-invalid"


class CrmConfigError(ConfigError):
    """A CRM configuration or data file is wrong; found at load time, never during a call."""

    error_id = "crm-config-invalid"
