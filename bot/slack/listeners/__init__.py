"""Bolt listeners grouped by Slack surface; each module has `register(app, ctx)`."""
