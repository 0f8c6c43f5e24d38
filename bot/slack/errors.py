"""Refusals: requests a Slack user may not make. The error boundary turns them into words."""

from __future__ import annotations

from phoneindex.audit import Allowance
from phoneindex.errors import WhoisError


class Refused(WhoisError):
    """A request refused before any account data was read; carries no data itself."""


class NotAnAgent(Refused):
    """The user is not in SLACK_AGENT_USERS."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"{user_id} is not in SLACK_AGENT_USERS")
        self.user_id = user_id


class NotAnAdmin(Refused):
    """The user is not in SLACK_ADMIN_USERS."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"{user_id} is not in SLACK_ADMIN_USERS")
        self.user_id = user_id


class OverLimit(Refused):
    """The user made more lookups in the last hour than MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR."""

    def __init__(self, user_id: str, allowance: Allowance) -> None:
        super().__init__(f"{user_id} is over the hourly lookup limit ({allowance.limit})")
        self.user_id = user_id
        self.allowance = allowance


class BadButton(Refused):
    """A button value that is not what this app puts there."""

    def __init__(self) -> None:
        super().__init__("unexpected button value")


class HelpAsked(WhoisError):
    """`/whois` with no number, or `/whois help`: the answer is the usage hint."""

    def __init__(self) -> None:
        super().__init__("usage")
