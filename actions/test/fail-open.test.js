// Every Action fails open: mfa-whois slow, failing, unreachable or unconfigured never breaks,
// denies or (beyond the timeout) delays what Auth0 is doing, and the log stays clean.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const events = require("./events");
const { SECRET, startStub, closedUrl, captured, loadAction, secretsFor } = require("./helpers");

const { CODE } = events;
const MARGIN_MS = 1000;


/** Each Action, run as Auth0 runs it (the phone templates with a delivery that works). */
const ACTIONS = [
  {
    file: "post-user-registration.js",
    run: (action, secrets) => action.onExecutePostUserRegistration(events.postUserRegistration(secrets), {}),
  },
  {
    file: "post-login.js",
    run: (action, secrets, api) => action.onExecutePostLogin(events.postLogin(secrets), api),
  },
  {
    file: "send-phone-message.js",
    run: (action, secrets, api) => action.onExecuteSendPhoneMessage(events.sendPhoneMessage(secrets), api),
  },
  {
    file: "custom-phone-provider.js",
    run: (action, secrets, api) => action.onExecuteCustomPhoneProvider(events.customPhoneProvider(secrets), api),
  },
];

/** Load an Action with a recording delivery and an api whose deny() is recorded. */
function prepared(file) {
  const action = loadAction(file);
  const seen = { delivered: 0, denied: 0 };
  if (action.deliver) action.deliver = async () => void seen.delivered++;
  const api = { access: { deny: () => void seen.denied++ }, notification: { drop() {}, retry() {} } };
  return { action, api, seen };
}

/** The log never shows the secret, the signature, the code or more of a number than its tail. */
function assertClean(output, requests) {
  assert.ok(!output.includes(SECRET), "secret in the log");
  assert.ok(!output.includes(CODE), "one-time code in the log");
  for (const digits of ["4155550100", "4155550177", "4155550188"]) {
    assert.ok(!output.includes(digits.slice(-7)), `number ${digits} in the log`);
  }
  for (const request of requests) {
    const signature = request.headers["x-whois-signature"].slice(3);
    assert.ok(!output.includes(signature.slice(0, 16)), "signature in the log");
  }
}

for (const { file, run } of ACTIONS) {
  test(`${file}: mfa-whois never answering costs at most the timeout`, { timeout: 10000 }, async () => {
    const stub = await startStub("hang");
    try {
      const { action, api, seen } = prepared(file);
      const secrets = secretsFor(stub.url, { MFA_WHOIS_TIMEOUT_MS: "300" });
      const { result, output, ms } = await captured(() => run(action, secrets, api));
      assert.equal(result, undefined);
      assert.equal(stub.requests.length, 1, "the request was made");
      assert.ok(ms >= 250 && ms < 300 + MARGIN_MS, `took ${ms} ms`);
      assert.match(output, /not sent: no answer within 300 ms/);
      assert.equal(seen.denied, 0);
      if (action.deliver) assert.equal(seen.delivered, 1);
      assertClean(output, stub.requests);
    } finally {
      await stub.close();
    }
  });

  test(`${file}: mfa-whois answering 500 is logged and ignored`, async () => {
    const stub = await startStub("error");
    try {
      const { action, api, seen } = prepared(file);
      const { result, output, ms } = await captured(() => run(action, secretsFor(stub.url), api));
      assert.equal(result, undefined);
      assert.equal(stub.requests.length, 1);
      assert.ok(ms < MARGIN_MS, `took ${ms} ms`);
      assert.match(output, /not accepted: HTTP 500/);
      assert.equal(seen.denied, 0);
      if (action.deliver) assert.equal(seen.delivered, 1);
      assertClean(output, stub.requests);
    } finally {
      await stub.close();
    }
  });

  test(`${file}: mfa-whois unreachable (connection refused) is logged and ignored`, async () => {
    const url = await closedUrl();
    const { action, api, seen } = prepared(file);
    const { result, output, ms } = await captured(() => run(action, secretsFor(url), api));
    assert.equal(result, undefined);
    assert.ok(ms < MARGIN_MS, `took ${ms} ms`);
    assert.match(output, /not sent: connection failed \(ECONNREFUSED\)/);
    assert.ok(!output.includes(url), "URL in the log");
    assert.equal(seen.denied, 0);
    if (action.deliver) assert.equal(seen.delivered, 1);
    assertClean(output, []);
  });

  test(`${file}: without its secrets it posts nothing and says which are missing`, async () => {
    const stub = await startStub("ok");
    try {
      for (const secrets of [{}, { MFA_WHOIS_URL: stub.url }, { MFA_WHOIS_ACTION_SECRET: SECRET }]) {
        const { action, api, seen } = prepared(file);
        const { result, output } = await captured(() => run(action, secrets, api));
        assert.equal(result, undefined);
        assert.match(output, /not sent: the secrets MFA_WHOIS_URL and MFA_WHOIS_ACTION_SECRET are not both set/);
        if (action.deliver) assert.equal(seen.delivered, 1);
        assertClean(output, []);
      }
      assert.equal(stub.requests.length, 0);
    } finally {
      await stub.close();
    }
  });

  test(`${file}: a URL that is not http(s) is refused before any request`, async () => {
    const { action, api } = prepared(file);
    const { output } = await captured(() => run(action, secretsFor("whois.example.com"), api));
    assert.match(output, /not sent: MFA_WHOIS_URL is not an https:\/\/ URL/);
  });
}

test("the default timeout is 1.5 s, and a malformed MFA_WHOIS_TIMEOUT_MS keeps it", { timeout: 10000 }, async () => {
  const stub = await startStub("hang");
  try {
    const { action, api, seen } = prepared("post-login.js");
    const secrets = secretsFor(stub.url, { MFA_WHOIS_TIMEOUT_MS: "soon" });
    const { output, ms } = await captured(() => action.onExecutePostLogin(events.postLogin(secrets), api));
    assert.ok(ms >= 1400 && ms < 1500 + MARGIN_MS, `took ${ms} ms`);
    assert.match(output, /no answer within 1500 ms/);
    assert.equal(seen.denied, 0);
  } finally {
    await stub.close();
  }
});
