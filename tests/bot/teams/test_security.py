"""POST /api/messages accepts only Bot Framework tokens for our bot: anything else is 401 and
nothing is posted; our own TEAMS_* settings are the only credentials read."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.teams.context import teams_configured
from phoneindex.errors import ConfigError
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.teams.conftest import AGENT, Tenant, open_tenant
from tests.fake_teams import APP_ID, APP_PASSWORD, BOT_TOKEN, TENANT, activity


def _forged(teams: Tenant) -> str:
    """Right claims, signed by a key that is not Microsoft's (same key id)."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": "https://api.botframework.com",
        "aud": APP_ID,
        "exp": int(time.time()) + 600,
        "serviceurl": teams.fake.service_url,
    }
    return jwt.encode(claims, other, algorithm="RS256", headers={"kid": teams.fake.kid})


BAD_TOKENS = {
    "forged": _forged,
    "expired": lambda t: t.fake.token(exp=int(time.time()) - 301 - 60, nbf=None),
    "wrong audience": lambda t: t.fake.token(aud="some-other-bot"),
    "wrong issuer": lambda t: t.fake.token(iss="https://evil.example"),
    "wrong serviceurl": lambda t: t.fake.token(service_url="https://attacker.example/"),
    "no serviceurl": lambda t: t.fake.token(serviceurl=None),
    "other path serviceurl": lambda t: t.fake.token(service_url=t.fake.base_url + "/Teams/"),
    "no expiry": lambda t: t.fake.token(exp=None),
    "HS256": lambda t: jwt.encode(
        {
            "iss": "https://api.botframework.com",
            "aud": APP_ID,
            "exp": int(time.time()) + 600,
            "serviceurl": t.fake.service_url,
        },
        "k" * 32,
        algorithm="HS256",
        headers={"kid": t.fake.kid},
    ),
    "unknown key": lambda t: jwt.encode(
        {
            "iss": "https://api.botframework.com",
            "aud": APP_ID,
            "exp": int(time.time()) + 600,
            "serviceurl": t.fake.service_url,
        },
        t.fake.private,
        algorithm="RS256",
        headers={"kid": "not-published"},
    ),
    "garbage": lambda t: "not-a-jwt",
    "missing": lambda t: "",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_a_bad_token_is_401_and_nothing_is_posted(teams: Tenant, kind: str) -> None:
    token = BAD_TOKENS[kind](teams)
    answer = teams.post(activity(teams.fake, text="whois +14155550100", user=AGENT), token)

    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthorized"}
    time.sleep(0.2)  # a reply, had one been started, would have reached the connector by now
    assert teams.fake.connector_calls() == []
    assert teams.fake.token_requests == []  # not even a bot token was fetched
    assert teams.audit() == []


def test_a_valid_token_within_the_clock_skew_is_accepted(teams: Tenant) -> None:
    token = teams.fake.token(exp=int(time.time()) - 200)
    answer = teams.post(activity(teams.fake, text="help", user=AGENT), token)

    assert answer.status_code == 200
    assert teams.fake.activities(1)


def test_a_serviceurl_claim_may_differ_by_a_trailing_slash_only(teams: Tenant) -> None:
    token = teams.fake.token(service_url=teams.fake.service_url.rstrip("/"))
    assert teams.post(activity(teams.fake, text="help", user=AGENT), token).status_code == 200


def test_a_key_not_endorsed_for_teams_is_refused(teams: Tenant) -> None:
    teams.fake.jwks[0]["endorsements"] = ["webchat"]
    answer = teams.post(activity(teams.fake, text="help", user=AGENT))
    assert answer.status_code == 401


def test_oversized_or_malformed_activities_do_no_work(teams: Tenant) -> None:
    big = activity(teams.fake, text="whois " + "1" * 300_000, user=AGENT)
    assert teams.post(big).status_code == 413
    headers = {"Authorization": f"Bearer {teams.fake.token()}"}
    # Not an activity: no serviceUrl for the token's claim to match, so nothing is trusted.
    assert teams.http.post("/api/messages", content=b"[1]", headers=headers).status_code == 401
    forged = {"Authorization": "Bearer not-a-token"}
    assert teams.http.post("/api/messages", content=b"{oops", headers=forged).status_code == 401
    odd = activity(teams.fake, text="help", user=AGENT) | {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "value": "not an object",
        "channelData": {"tenant": "not an object"},
    }
    assert teams.post(odd).status_code < 500
    time.sleep(0.2)
    assert teams.fake.connector_calls() == [] and teams.audit() == []


def test_other_routes_are_not_behind_the_bot_framework_check(teams: Tenant) -> None:
    assert teams.http.get("/healthz").status_code == 200


def test_the_bot_token_comes_from_teams_settings_not_generic_variables(
    teams: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        teams.post(activity(teams.fake, text="help", user=AGENT))
        teams.fake.activities(n + 1)

    [request] = teams.fake.token_requests  # one token for all three replies
    assert request["client_id"] == APP_ID and request["client_secret"] == APP_PASSWORD
    assert request["scope"] == "https://api.botframework.com/.default"
    for reply in teams.fake.activities(3):
        assert reply.headers["authorization"] == f"Bearer {BOT_TOKEN}"


def test_generic_client_id_tenant_id_in_the_environment_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLIENT_ID", "someone-elses-app")
    monkeypatch.setenv("CLIENT_SECRET", "someone-elses-secret")
    monkeypatch.setenv("TENANT_ID", TENANT)
    settings = load_settings()
    assert settings.teams_app_id is None and settings.teams_tenant_id is None
    assert teams_configured(settings) is False


def test_half_configured_teams_fails_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEAMS_APP_ID", APP_ID)
    monkeypatch.setenv("TEAMS_TENANT_ID", TENANT)
    with pytest.raises(ConfigError, match="^TEAMS_APP_PASSWORD is not set"):
        teams_configured(load_settings())


@pytest.mark.parametrize(
    "variable", ["TEAMS_LOGIN_URL", "TEAMS_OPENID_METADATA_URL", "TEAMS_ALERT_WEBHOOK_URL"]
)
def test_a_malformed_teams_url_is_one_line(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "login.example.com")
    with pytest.raises(ConfigError, match=f"^{variable}: .*not an http"):
        load_settings()


def test_defaults_are_the_public_cloud() -> None:
    settings = load_settings()
    assert settings.teams_openid_metadata_url == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
    assert settings.teams_token_issuer == "https://api.botframework.com"
    assert settings.teams_login_url == "https://login.microsoftonline.com"
    assert settings.teams_agents == frozenset() and settings.teams_admins == frozenset()


def test_a_reply_is_retried_when_teams_asks_to_slow_down(teams: Tenant) -> None:
    teams.fake.connector_failures[:] = [429, 503]
    teams.post(activity(teams.fake, text="help", user=AGENT))

    [reply] = teams.fake.activities(1)
    assert reply.body["text"].startswith("**Usage:**")
    assert teams.fake.connector_failures == []


def test_rolled_signing_keys_are_fetched_again_at_most_every_five_minutes(store: Store) -> None:
    now = [1000.0]
    with open_tenant(store, monotonic=lambda: now[0]) as teams:
        message = activity(teams.fake, text="help", user=AGENT)
        assert teams.post(message).status_code == 200
        teams.fake.roll_key()
        fresh = teams.fake.token()
        now[0] += 60  # a token with an unknown key a minute later: not worth a fetch yet
        assert teams.post(message, fresh).status_code == 401
        now[0] += 250  # over five minutes since the last fetch: the keys are read again
        assert teams.post(message, fresh).status_code == 200
