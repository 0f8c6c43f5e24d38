"""The Slack app: /whois, /reindex, buttons, App Home, and the supervisors' alert channel."""
