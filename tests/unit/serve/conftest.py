"""The SMS fixtures, for the admin endpoint that sends notifications."""

from tests.unit.sms.conftest import (  # noqa: F401 - fixtures used by name
    directory,
    sender,
    service,
    sms_clock,
    sms_config,
    sms_journey,
)
