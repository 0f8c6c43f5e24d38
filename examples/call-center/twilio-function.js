/**
 * Twilio: who is calling or texting? A Twilio Function (Node 18+) that asks mfa-whois.
 *
 * In Studio, add a "Run Function" widget with this function and the parameter
 * From = {{trigger.call.From}} (or {{trigger.message.From}}); read the answer as
 * {{widgets.<name>.parsed.status}} (found, none, unusable, error), .count, .accounts[0].email...
 * A Function must answer within 10 s; this one gives mfa-whois MFA_WHOIS_TIMEOUT_MS (default
 * 2500 ms) and then answers "error" so the flow goes on. Studio's "Make HTTP Request" widget can
 * also POST to /api/v1/lookup directly (Authorization header, JSON body {"phone": ...}).
 * A match is a routing hint, not proof of identity: caller ids can be spoofed.
 *
 * Environment variables of the Service: MFA_WHOIS_URL, MFA_WHOIS_API_KEY (the key of one
 * `name:key` entry of MFA_WHOIS_API_KEYS), optional MFA_WHOIS_TIMEOUT_MS.
 */
exports.handler = async function handler(context, event, callback) {
  const timeoutMs = Number.parseInt(context.MFA_WHOIS_TIMEOUT_MS, 10) || 2500;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(`${String(context.MFA_WHOIS_URL).replace(/\/+$/, "")}/api/v1/lookup`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${context.MFA_WHOIS_API_KEY}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ phone: String(event.From || "") }), // "anonymous" etc. -> unusable
      signal: controller.signal,
    });
    if (response.status === 400) return callback(null, { status: "unusable", count: 0, accounts: [] });
    if (response.status !== 200) {
      console.log(`mfa-whois: lookup answered ${response.status}`);
      return callback(null, { status: "error", count: 0, accounts: [] });
    }
    const doc = await response.json();
    const accounts = (doc.accounts || []).map((a) => ({
      user_id: a.user_id,
      email: a.email,
      name: a.name,
      blocked: a.blocked,
      links: [...new Set((a.phones || []).map((p) => p.kind))].join("+"),
    }));
    return callback(null, {
      status: accounts.length ? "found" : "none",
      count: accounts.length,
      accounts,
      stale: Boolean(doc.freshness && doc.freshness.stale),
    });
  } catch (error) {
    console.log(`mfa-whois: lookup failed (${error.name})`); // never the number
    return callback(null, { status: "error", count: 0, accounts: [] });
  } finally {
    clearTimeout(timer);
  }
};
