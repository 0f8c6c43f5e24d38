/**
 * mfa-whois: post-login Action (trigger "Login / Post Login", Node 18 or later).
 *
 * Tells mfa-whois about a login that involved a phone (user.login), so that it re-reads the
 * account's MFA phone numbers: Auth0 shows an Action the factors a user has, never the numbers.
 * To avoid a request on every login it posts only when
 *   - a method of this login is a phone: an MFA challenge by SMS or voice (type "phone"), a
 *     passwordless SMS login (name "sms"), a password reset by phone (name "phone_number"); or
 *   - the user has a phone factor enrolled (event.user.enrolledFactors), so that a changed
 *     enrollment reaches the index at the next login;
 * and never for a refresh-token exchange (no one authenticated). Other logins cost nothing.
 * Self-contained: paste this whole file into the Action's editor.
 *
 * Secrets: MFA_WHOIS_URL (e.g. https://whois.example.com), MFA_WHOIS_ACTION_SECRET (the same
 * value as mfa-whois's MFA_WHOIS_ACTION_SECRET), optional MFA_WHOIS_TIMEOUT_MS (default 1500,
 * at most 5000). It fails open: a slow, failing or unreachable mfa-whois delays the login by
 * at most the timeout and writes a log line; it never denies or breaks a login.
 */

// ---- mfa-whois shared code: begin ----
// Auth0 runs every Action on its own, so this block is copied into each Action of actions/;
// test/shared-code.test.js fails when the copies differ. Change them all at once.
const crypto = require("crypto");

const WHOIS_DEFAULT_TIMEOUT_MS = 1500;
const WHOIS_MAX_TIMEOUT_MS = 5000;

/** Write one line to the Action's log; never a secret, a code or a full phone number. */
function whoisLog(message) {
  console.log(`mfa-whois: ${message}`);
}

/** Where and how to post, from the Action's secrets; null (and a log line) when they are unset. */
function whoisSettings(event, label) {
  const secrets = (event && event.secrets) || {};
  const base = String(secrets.MFA_WHOIS_URL || "").trim().replace(/\/+$/, "");
  const secret = String(secrets.MFA_WHOIS_ACTION_SECRET || "");
  if (!base || !secret) {
    whoisLog(`${label} not sent: the secrets MFA_WHOIS_URL and MFA_WHOIS_ACTION_SECRET are not both set`);
    return null;
  }
  if (!/^https?:\/\/[^/]/i.test(base)) {
    whoisLog(`${label} not sent: MFA_WHOIS_URL is not an https:// URL`);
    return null;
  }
  if (typeof fetch !== "function" || typeof AbortController !== "function") {
    whoisLog(`${label} not sent: this runtime has no fetch (choose Node 18 or later)`);
    return null;
  }
  const wanted = Number.parseInt(secrets.MFA_WHOIS_TIMEOUT_MS, 10);
  const timeoutMs = wanted > 0 ? Math.min(wanted, WHOIS_MAX_TIMEOUT_MS) : WHOIS_DEFAULT_TIMEOUT_MS;
  return { endpoint: `${base}/hooks/auth0/action`, secret, timeoutMs };
}

/** The current time as the contract writes it: ISO 8601, UTC, whole seconds. */
function whoisNow() {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

/** The event id: the same for the same Auth0 event (parts), a fresh UUID when there are none. */
function whoisEventId(secret, type, parts) {
  if (!parts) return `${type}:${crypto.randomUUID()}`;
  const mac = crypto.createHmac("sha256", secret);
  mac.update(JSON.stringify(["mfa-whois event id", type, ...parts]));
  return `${type}:${mac.digest("hex").slice(0, 32)}`;
}

/** A phone number reduced to its leading + and digits (Auth0 may write +1-808-555-0100). */
function whoisCleanNumber(raw) {
  const text = String(raw || "").trim();
  const digits = text.replace(/\D/g, "");
  if (!digits) return "";
  return text.startsWith("+") ? `+${digits}` : digits;
}

/** A number as log lines may show it: at most its last four digits. */
function whoisMask(number) {
  const digits = String(number || "").replace(/\D/g, "");
  return `…${digits.slice(digits.length >= 8 ? -4 : -2)}`;
}

/** A linked identity as the Management API writes it, without tokens or other profile data. */
function whoisIdentity(identity) {
  const item = identity || {};
  const provider = item.provider ? String(item.provider) : null;
  let userId = item.user_id || item.userId || null;
  if (userId !== null) userId = String(userId);
  if (userId && provider && userId.startsWith(`${provider}|`)) userId = userId.slice(provider.length + 1);
  const profile = item.profileData || {};
  const profileData = {};
  if (profile.phone_number) profileData.phone_number = String(profile.phone_number);
  if (typeof profile.phone_verified === "boolean") profileData.phone_verified = profile.phone_verified;
  return {
    provider,
    connection: item.connection ? String(item.connection) : null,
    user_id: userId,
    isSocial: Boolean(item.isSocial),
    profileData,
  };
}

/** The account fields mfa-whois indexes, from an Action's event.user. */
function whoisUser(user) {
  const item = user || {};
  return {
    user_id: item.user_id ? String(item.user_id) : null,
    email: item.email ? String(item.email) : null,
    name: item.name ? String(item.name) : null,
    phone_number: item.phone_number ? String(item.phone_number) : null,
    phone_verified: typeof item.phone_verified === "boolean" ? item.phone_verified : null,
    created_at: item.created_at ? new Date(item.created_at).toISOString() : null,
    identities: Array.isArray(item.identities) ? item.identities.map(whoisIdentity) : [],
    multifactor: Array.isArray(item.multifactor) ? item.multifactor.map(String) : [],
  };
}

/** Why a post failed, in words that carry no URL, secret or number. */
function whoisReason(error, timeoutMs) {
  if (error && error.name === "AbortError") return `no answer within ${timeoutMs} ms`;
  const code = (error && error.cause && error.cause.code) || (error && error.code);
  if (code) return `connection failed (${code})`;
  return `request failed (${(error && error.name) || "error"})`;
}

/** Post one signed event; resolves to "sent", "refused" or "failed", never throws, never waits past the timeout. */
async function whoisPost(settings, doc, label) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), settings.timeoutMs);
  try {
    const body = JSON.stringify(doc);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = crypto
      .createHmac("sha256", settings.secret)
      .update(`${timestamp}.${body}`)
      .digest("hex");
    const response = await fetch(settings.endpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-Whois-Timestamp": timestamp,
        "X-Whois-Signature": `v1=${signature}`,
      },
      body,
      signal: controller.signal,
    });
    await response.arrayBuffer().catch(() => undefined);
    if (response.ok) {
      whoisLog(`${label} sent`);
      return "sent";
    }
    whoisLog(`${label} not accepted: HTTP ${response.status}`);
    return "refused";
  } catch (error) {
    whoisLog(`${label} not sent: ${whoisReason(error, settings.timeoutMs)}`);
    return "failed";
  } finally {
    clearTimeout(timer);
  }
}

/** Run one notification so that nothing it does can throw into the Action. */
async function whoisSafely(label, work) {
  try {
    return await work();
  } catch (error) {
    whoisLog(`${label} not sent: ${whoisReason(error, 0)}`);
    return "failed";
  }
}
// ---- mfa-whois shared code: end ----

const PHONE_METHOD_NAMES = ["sms", "voice", "phone_number"];
const PHONE_METHOD_TYPES = ["phone", "sms", "voice"];

/** The value if it is an array, else an empty one (events are read defensively). */
function listOf(value) {
  return Array.isArray(value) ? value : [];
}

/** What the login used and what the user has enrolled, as the contract's `login` object. */
function loginFacts(event) {
  const methods = listOf(event.authentication && event.authentication.methods)
    .filter((method) => method && method.name)
    .map((method) =>
      method.type ? { name: String(method.name), type: String(method.type) } : { name: String(method.name) },
    );
  const enrolled = listOf(event.user && event.user.enrolledFactors)
    .filter((factor) => factor && factor.type)
    .map((factor) => String(factor.type));
  return { methods, enrolled_factors: enrolled };
}

/** Whether this login is worth a request: a phone was used, or a phone factor is enrolled. */
function involvesPhone(login) {
  const usedPhone = login.methods.some(
    (method) => PHONE_METHOD_TYPES.includes(method.type) || PHONE_METHOD_NAMES.includes(method.name),
  );
  return usedPhone || login.enrolled_factors.includes("phone");
}

/** Fields that name this login: the same on a re-run, different for the user's next login. */
function loginIdParts(event) {
  const transactionId = event.transaction && event.transaction.id;
  const loginsCount = event.stats && event.stats.logins_count;
  const stamps = listOf(event.authentication && event.authentication.methods)
    .map((method) => (method && method.timestamp) || "")
    .filter(Boolean);
  if (!transactionId && loginsCount === undefined && stamps.length === 0) return null;
  return [
    String(event.user.user_id),
    transactionId ? String(transactionId) : "",
    loginsCount === undefined ? "" : String(loginsCount),
    ...stamps.map(String),
  ];
}

/** Post a login that involved a phone to mfa-whois; resolves to what happened, never throws. */
async function notifyMfaWhois(event) {
  return whoisSafely("user.login", async () => {
    if (!event || !event.user || !event.user.user_id) {
      whoisLog("user.login not sent: the event has no user_id");
      return "skipped";
    }
    if (event.transaction && event.transaction.protocol === "oauth2-refresh-token") return "skipped";
    const login = loginFacts(event);
    if (!involvesPhone(login)) return "skipped";
    const settings = whoisSettings(event, "user.login");
    if (!settings) return "skipped";
    const doc = {
      id: whoisEventId(settings.secret, "user.login", loginIdParts(event)),
      type: "user.login",
      occurred_at: whoisNow(),
      user: whoisUser(event.user),
      login,
    };
    return whoisPost(settings, doc, "user.login");
  });
}

/**
 * Handler that will be called during the execution of a PostLogin flow.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
exports.onExecutePostLogin = async (event, api) => {
  await notifyMfaWhois(event);
};

exports.notifyMfaWhois = notifyMfaWhois;
