"""Requests from any Slack workspace other than the app's own are refused, without account data.

The app's own workspace is what `auth.test` says of the bot token: Bolt calls it once and keeps
the answer as each request's authorize result (its `team_id`, and `enterprise_id` on Enterprise
Grid). A request signed with our signing secret still comes from another workspace when the app
is distributed, or in a Slack Connect channel shared with another organization. Those get a
short refusal (slash commands) or nothing (buttons, events), and no listener runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.slack import render, texts

log = logging.getLogger(__name__)


def same_workspace(
    own_team: str | None, own_enterprise: str | None, team: str | None, enterprise: str | None
) -> bool:
    """Whether a request from `team`/`enterprise` belongs to the app's own workspace."""
    if own_enterprise and enterprise and enterprise != own_enterprise:
        return False
    if own_team and not own_team.startswith("E"):  # installed in one workspace
        return team == own_team
    # Installed org-wide on Enterprise Grid: any workspace of that organization.
    return bool(own_enterprise) and enterprise == own_enterprise


async def only_our_workspace(
    context: AsyncBoltContext,
    body: dict[str, Any],
    next: Callable[[], Awaitable[None]],  # noqa: A002  (Bolt passes it by this name)
) -> BoltResponse | None:
    """Bolt global middleware: let the app's own workspace through, refuse every other."""
    own = context.authorize_result
    if own is not None and same_workspace(
        own.team_id, own.enterprise_id, context.team_id, context.enterprise_id
    ):
        await next()
        return None
    log.warning(
        "refused a Slack request from workspace %s (enterprise %s): not the app's own",
        context.team_id,
        context.enterprise_id,
    )
    if body.get("command"):
        return BoltResponse(status=200, body=render.message(texts.OTHER_WORKSPACE))
    return BoltResponse(status=200, body="")
