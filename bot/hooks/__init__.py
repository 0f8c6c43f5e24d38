"""Webhooks Auth0 calls: the log stream (logstream.py) and the Actions' signed events
(action.py); each module registers its route."""

from __future__ import annotations

from fastapi import FastAPI

from bot.hooks import action, logstream
from phoneindex.settings import Settings
from phoneindex.store import Store


def register(app: FastAPI, settings: Settings, store: Store) -> None:
    """Mount every Auth0 webhook on `app`."""
    logstream.register(app, settings, store)
    action.register(app, settings, store)
