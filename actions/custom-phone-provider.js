/**
 * mfa-whois: notifier for the custom-phone-provider Action (Branding > Phone Provider > Custom;
 * trigger "custom-phone-provider", Node 18 or later), for tenants on Auth0's newer phone
 * provider setup (the Unified Phone Experience) that send their messages through their own
 * provider.
 *
 * That Action REPLACES Auth0's own delivery: it must send the message itself through your
 * provider. So this file is a template for YOUR provider Action, not a finished one:
 *   1. replace the body of deliver() below with your provider's code (or paste
 *      notifyMfaWhois() and the shared block into your existing provider Action);
 *   2. keep the order of onExecuteCustomPhoneProvider: deliver first, then notifyMfaWhois().
 * notifyMfaWhois() tells mfa-whois the number an MFA code was just sent to (phone.message:
 * message type otp_enroll = purpose "enroll", otp_verify = "challenge"); other messages
 * (blocked_account, change_password, password_breach, ...) and passwordless SMS login codes
 * (connection strategy "sms") are not MFA and are not posted.
 * It runs after the message is handed to your provider, waits at most the timeout, and never
 * throws: mfa-whois being down can neither delay nor break delivery. It never logs, posts or
 * derives anything from the one-time code.
 *
 * Secrets: MFA_WHOIS_URL (e.g. https://whois.example.com), MFA_WHOIS_ACTION_SECRET (the same
 * value as mfa-whois's MFA_WHOIS_ACTION_SECRET), optional MFA_WHOIS_TIMEOUT_MS (default 1500,
 * at most 5000), plus whatever your provider needs.
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

const MFA_PURPOSES = { otp_enroll: "enroll", otp_verify: "challenge" };
const DELIVERY_METHODS = { text: "sms", voice: "voice" };

/** The phone part of the notification: number, sms or voice, enroll or challenge; or why there is none. */
function phoneOf(event) {
  const notification = (event && event.notification) || {};
  const purpose = MFA_PURPOSES[notification.message_type];
  if (!purpose) return { skip: "not an MFA code message", quiet: true };
  // This trigger also sends passwordless SMS login codes (otp_verify): not an MFA number, and
  // the index has it from the account itself.
  const connection = (event && event.connection) || {};
  if (connection.strategy === "sms") return { skip: "a passwordless login code", quiet: true };
  const number = whoisCleanNumber(notification.recipient);
  if (!number) return { skip: "the notification has no recipient" };
  const method = DELIVERY_METHODS[notification.delivery_method];
  if (!method) return { skip: "the delivery method is neither text nor voice" };
  return { number, method, purpose };
}

/** Tell mfa-whois where an MFA code was just sent; resolves to what happened, never throws. */
async function notifyMfaWhois(event) {
  return whoisSafely("phone.message", async () => {
    const phone = phoneOf(event);
    if (phone.skip) {
      if (!phone.quiet) whoisLog(`phone.message not sent: ${phone.skip}`);
      return "skipped";
    }
    const label = `phone.message ${phone.purpose} ${phone.method} to ${whoisMask(phone.number)}`;
    if (!event.user || !event.user.user_id) {
      whoisLog(`${label} not sent: the event has no user_id`);
      return "skipped";
    }
    const settings = whoisSettings(event, label);
    if (!settings) return "skipped";
    const doc = {
      // The trigger carries no id of its own, and one derived from the code would leak it: a
      // fresh id per message (a repeated post only links the same number again).
      id: whoisEventId(settings.secret, "phone.message", null),
      type: "phone.message",
      occurred_at: whoisNow(),
      user: whoisUser(event.user),
      phone,
    };
    return whoisPost(settings, doc, label);
  });
}

/**
 * YOUR DELIVERY GOES HERE: send event.notification.as_text (delivery_method "text") or
 * event.notification.as_voice ("voice") to event.notification.recipient through your provider;
 * on failure throw, or call api.notification.retry(reason) / api.notification.drop(reason) as
 * Auth0 documents. Until replaced it throws, so a tenant never runs this template believing its
 * messages are being sent.
 */
async function deliver(event, api) {
  throw new Error("mfa-whois template: replace deliver() with your phone provider's code");
}

/**
 * Handler to be executed while sending a phone notification.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {CustomPhoneProviderAPI} api - Methods and utilities to help change the behavior of sending a phone notification.
 */
exports.onExecuteCustomPhoneProvider = async (event, api) => {
  await exports.deliver(event, api); // first: the user's message must never wait for mfa-whois
  await exports.notifyMfaWhois(event); // then: at most MFA_WHOIS_TIMEOUT_MS, never throws
};

exports.deliver = deliver;
exports.notifyMfaWhois = notifyMfaWhois;
