"""Microsoft Teams: the Bot Framework endpoint, Adaptive Card rendering, Workflows alerts."""
