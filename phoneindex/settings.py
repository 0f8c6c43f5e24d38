"""One settings object, read from the environment and a `.env` file, built at each entry point."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from phoneindex.errors import ConfigError

# Environment variable name for every field whose name differs from it.
_ALIASES = {
    "default_region": "MFA_WHOIS_DEFAULT_REGION",
    "api_keys": "MFA_WHOIS_API_KEYS",
    "action_secret": "MFA_WHOIS_ACTION_SECRET",
    "logstream_token": "MFA_WHOIS_LOGSTREAM_TOKEN",
    "full_sync_cron": "MFA_WHOIS_FULL_SYNC_CRON",
    "log_poll_seconds": "MFA_WHOIS_LOG_POLL_SECONDS",
    "stale_after_hours": "MFA_WHOIS_STALE_AFTER_HOURS",
    "auth0_max_rps": "MFA_WHOIS_AUTH0_MAX_RPS",
    "agent_lookups_per_hour": "MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR",
    "secret_key": "MFA_WHOIS_SECRET_KEY",
    "audit_retention_days": "MFA_WHOIS_AUDIT_RETENTION_DAYS",
}


MIN_API_KEY_CHARS = 16
_KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class ApiKey:
    """One entry of MFA_WHOIS_API_KEYS: the name (audit actor), the key, an optional limit."""

    name: str
    key: str = field(repr=False)
    lookups_per_hour: int | None = None  # None: MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR


def parse_api_keys(value: str) -> tuple[ApiKey, ...]:
    """`name:key` or `name:key:lookups-per-hour`, comma-separated; ValueError never shows a key."""
    keys: list[ApiKey] = []
    for number, entry in enumerate((e.strip() for e in value.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"entry {number} is not name:key or name:key:lookups-per-hour")
        name, key = parts[0].strip(), parts[1].strip()
        if not _KEY_NAME.fullmatch(name):
            raise ValueError(
                f"entry {number}: the name must be 1-64 letters, digits, '.', '_' or '-'"
            )
        if len(key) < MIN_API_KEY_CHARS or any(c.isspace() for c in key):
            raise ValueError(
                f"entry {number} ({name}): the key must be {MIN_API_KEY_CHARS} or more "
                "characters without spaces"
            )
        limit = None
        if len(parts) == 3:
            text = parts[2].strip()
            if not (text.isascii() and text.isdigit()):
                raise ValueError(f"entry {number} ({name}): lookups-per-hour must be 0 or more")
            limit = int(text)
        if any(k.name == name for k in keys):
            raise ValueError(f"the name {name} is used twice; names must be unique")
        if any(k.key == key for k in keys):
            raise ValueError(f"entry {number} ({name}) has the key of another entry")
        keys.append(ApiKey(name, key, limit))
    return tuple(keys)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Configuration of mfa-whois; see CONTRACT.md for the meaning of each variable."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = "sqlite:///mfa-whois.db"
    default_region: str = Field("US", alias="MFA_WHOIS_DEFAULT_REGION")

    auth0_domain: str | None = None
    auth0_client_id: str | None = None
    auth0_client_secret: SecretStr | None = None
    auth0_audience: str | None = None
    auth0_connection_id: str | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_alert_channel: str | None = None
    slack_admin_users: str = ""
    slack_agent_users: str = ""

    api_keys: SecretStr | None = Field(None, alias="MFA_WHOIS_API_KEYS")
    action_secret: SecretStr | None = Field(None, alias="MFA_WHOIS_ACTION_SECRET")
    logstream_token: SecretStr | None = Field(None, alias="MFA_WHOIS_LOGSTREAM_TOKEN")
    full_sync_cron: str = Field("0 3 * * *", alias="MFA_WHOIS_FULL_SYNC_CRON")
    log_poll_seconds: int = Field(60, ge=0, alias="MFA_WHOIS_LOG_POLL_SECONDS")
    stale_after_hours: float = Field(26, gt=0, alias="MFA_WHOIS_STALE_AFTER_HOURS")
    auth0_max_rps: float = Field(2, gt=0, alias="MFA_WHOIS_AUTH0_MAX_RPS")
    agent_lookups_per_hour: int = Field(120, ge=0, alias="MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR")
    secret_key: SecretStr | None = Field(None, alias="MFA_WHOIS_SECRET_KEY")
    audit_retention_days: int = Field(90, ge=1, alias="MFA_WHOIS_AUDIT_RETENTION_DAYS")

    # Teams: our own prefixed names only (generic CLIENT_ID/TENANT_ID would clash with Auth0's).
    teams_app_id: str | None = None
    teams_app_password: SecretStr | None = None
    teams_tenant_id: str | None = None
    teams_agent_users: str = ""
    teams_admin_users: str = ""
    teams_alert_webhook_url: SecretStr | None = None  # its query string is a signature
    teams_openid_metadata_url: str = (
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
    teams_token_issuer: str = "https://api.botframework.com"
    teams_login_url: str = "https://login.microsoftonline.com"

    @field_validator("database_url")
    @classmethod
    def _driver_url(cls, value: str) -> str:
        """Accept the `postgres://` URLs PaaS hand out and pick the psycopg 3 driver."""
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if "://" not in value:
            raise ValueError("not a database URL (expected e.g. sqlite:///mfa-whois.db)")
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not an ISO 3166 region code such as US or GB")
        return region

    @field_validator(
        "auth0_domain",
        "auth0_audience",
        "auth0_connection_id",
        "slack_alert_channel",
        "teams_app_id",
        "teams_tenant_id",
    )
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("teams_openid_metadata_url", "teams_login_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        scheme, _, rest = url.partition("://")
        if scheme not in ("https", "http") or not rest:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return url

    @field_validator("teams_token_issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty (the public cloud's is https://api.botframework.com)")
        return value.strip()

    @field_validator("teams_alert_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().strip().startswith(("https://", "http://")):
            raise ValueError("not an http(s) URL (a Teams Workflows webhook URL)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @property
    def api_key_entries(self) -> tuple[ApiKey, ...]:
        """The HTTP API's keys; empty when MFA_WHOIS_API_KEYS is unset (the API answers 401)."""
        return parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys else ()

    @property
    def admin_users(self) -> frozenset[str]:
        """Slack user ids allowed to run /reindex."""
        return frozenset(_split_csv(self.slack_admin_users))

    @property
    def agent_users(self) -> frozenset[str]:
        """Slack user ids allowed to run /whois; empty means everybody."""
        return frozenset(_split_csv(self.slack_agent_users))

    @property
    def teams_agents(self) -> frozenset[str]:
        """Entra object ids allowed to look up in Teams; empty means every user of the tenant."""
        return frozenset(_split_csv(self.teams_agent_users))

    @property
    def teams_admins(self) -> frozenset[str]:
        """Entra object ids allowed to reindex from Teams."""
        return frozenset(_split_csv(self.teams_admin_users))

    def require(self, *fields: str) -> None:
        """Fail with one line naming the first missing variable among `fields`."""
        for name in fields:
            value = getattr(self, name)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise ConfigError(f"{env_name(name)} is not set; it is needed for this command")


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return _ALIASES.get(field, field.upper())


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one ConfigError line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "configuration"
        name = field if field.isupper() else env_name(field)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
