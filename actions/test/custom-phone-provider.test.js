const { test } = require("node:test");
const assert = require("node:assert/strict");
const events = require("./events");
const { startStub, closedUrl, captured, loadAction, secretsFor, signatureValid } = require("./helpers");

/** The template with a delivery that records when it ran. */
function withDelivery() {
  const action = loadAction("custom-phone-provider.js");
  const deliveries = [];
  action.deliver = async (event) => void deliveries.push({ to: event.notification.recipient, at: Date.now() });
  return { action, deliveries };
}

test("MFA code messages are posted as phone.message: text = sms, voice = voice, enroll / challenge", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("custom-phone-provider.js");
    const secrets = secretsFor(stub.url);
    const { output } = await captured(async () => {
      await action.notifyMfaWhois(events.customPhoneProvider(secrets, { messageType: "otp_enroll" }));
      await action.notifyMfaWhois(events.customPhoneProvider(secrets, { messageType: "otp_verify", method: "voice" }));
    });
    assert.equal(stub.requests.length, 2);
    for (const request of stub.requests) {
      assert.ok(signatureValid(request));
      assert.ok(!request.raw.includes(events.CODE), "the one-time code never leaves the Action");
    }
    const [enroll, challenge] = stub.requests.map((request) => JSON.parse(request.raw));
    assert.equal(enroll.type, "phone.message");
    assert.deepEqual(enroll.phone, { number: "+14155550100", method: "sms", purpose: "enroll" });
    assert.deepEqual(challenge.phone, { number: "+14155550100", method: "voice", purpose: "challenge" });
    assert.notEqual(enroll.id, challenge.id);
    assert.match(output, /phone\.message enroll sms to …0100 sent/);
  } finally {
    await stub.close();
  }
});

test("messages that are not MFA codes (nor passwordless login codes) are not posted", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("custom-phone-provider.js");
    const secrets = secretsFor(stub.url);
    const results = [];
    for (const messageType of ["blocked_account", "change_password", "password_breach", "something_new", null]) {
      const { result } = await captured(() => action.notifyMfaWhois(events.customPhoneProvider(secrets, { messageType })));
      results.push(result);
    }
    const passwordless = events.customPhoneProvider(secrets);
    passwordless.connection = { id: "con_sms", name: "sms", strategy: "sms" };
    results.push((await captured(() => action.notifyMfaWhois(passwordless))).result);
    assert.deepEqual(results, ["skipped", "skipped", "skipped", "skipped", "skipped", "skipped"]);
    assert.equal(stub.requests.length, 0);
  } finally {
    await stub.close();
  }
});

test("the template delivers first, notifies after, and still delivers when mfa-whois is down", async () => {
  const stub = await startStub("ok");
  try {
    const { action, deliveries } = withDelivery();
    await captured(() => action.onExecuteCustomPhoneProvider(events.customPhoneProvider(secretsFor(stub.url)), {}));
    assert.equal(stub.requests.length, 1);
    assert.ok(deliveries[0].at <= stub.requests[0].at, "delivery before the notification");

    const down = withDelivery();
    const secrets = secretsFor(await closedUrl());
    const { result } = await captured(() =>
      down.action.onExecuteCustomPhoneProvider(events.customPhoneProvider(secrets), {}),
    );
    assert.equal(result, undefined);
    assert.equal(down.deliveries.length, 1);
  } finally {
    await stub.close();
  }
});

test("the template as shipped refuses to run until deliver() is written", async () => {
  const action = loadAction("custom-phone-provider.js");
  await assert.rejects(
    action.onExecuteCustomPhoneProvider(events.customPhoneProvider({}), {}),
    /replace deliver\(\) with your phone provider's code/,
  );
});

test("an unknown delivery method is not posted, and said so", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("custom-phone-provider.js");
    const { output } = await captured(() =>
      action.notifyMfaWhois(events.customPhoneProvider(secretsFor(stub.url), { method: "carrier-pigeon" })),
    );
    assert.equal(stub.requests.length, 0);
    assert.match(output, /not sent: the delivery method is neither text nor voice/);
  } finally {
    await stub.close();
  }
});
