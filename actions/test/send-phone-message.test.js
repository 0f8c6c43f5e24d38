const { test } = require("node:test");
const assert = require("node:assert/strict");
const events = require("./events");
const { startStub, closedUrl, captured, loadAction, secretsFor, signatureValid } = require("./helpers");

/** The template with a delivery that records when it ran. */
function withDelivery() {
  const action = loadAction("send-phone-message.js");
  const deliveries = [];
  action.deliver = async (event) => void deliveries.push({ to: event.message_options.recipient, at: Date.now() });
  return { action, deliveries };
}

test("the notifier posts phone.message: number, method, purpose by the message's action", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("send-phone-message.js");
    const secrets = secretsFor(stub.url);
    const { output } = await captured(async () => {
      await action.notifyMfaWhois(events.sendPhoneMessage(secrets, { action: "enrollment" }));
      await action.notifyMfaWhois(events.sendPhoneMessage(secrets, { type: "voice" }));
    });
    assert.equal(stub.requests.length, 2);
    for (const request of stub.requests) {
      assert.equal(request.url, "/hooks/auth0/action");
      assert.ok(signatureValid(request));
    }
    const [enroll, challenge] = stub.requests.map((request) => JSON.parse(request.raw));
    assert.equal(enroll.type, "phone.message");
    assert.deepEqual(enroll.phone, { number: events.NUMBER, method: "sms", purpose: "enroll" });
    assert.deepEqual(challenge.phone, { number: events.NUMBER, method: "voice", purpose: "challenge" });
    assert.equal(enroll.user.user_id, "auth0|65a1b2c3d4e5f6a7b8c9d0e1");
    assert.match(enroll.id, /^phone\.message:[0-9a-f-]{36}$/);
    assert.notEqual(enroll.id, challenge.id);
    for (const request of stub.requests) {
      assert.ok(!request.raw.includes(events.CODE), "the one-time code never leaves the Action");
    }
    assert.match(output, /phone\.message enroll sms to …0100 sent/);
    assert.match(output, /phone\.message challenge voice to …0100 sent/);
  } finally {
    await stub.close();
  }
});

test("the template delivers first and notifies after", async () => {
  const stub = await startStub("ok");
  try {
    const { action, deliveries } = withDelivery();
    await captured(() => action.onExecuteSendPhoneMessage(events.sendPhoneMessage(secretsFor(stub.url)), {}));
    assert.equal(deliveries.length, 1);
    assert.equal(stub.requests.length, 1);
    assert.ok(deliveries[0].at <= stub.requests[0].at, "delivery before the notification");
  } finally {
    await stub.close();
  }
});

test("the template still delivers when mfa-whois is down or hangs", { timeout: 10000 }, async () => {
  const hanging = await startStub("hang");
  try {
    for (const url of [await closedUrl(), hanging.url]) {
      const { action, deliveries } = withDelivery();
      const secrets = secretsFor(url, { MFA_WHOIS_TIMEOUT_MS: "200" });
      const { result, ms } = await captured(() =>
        action.onExecuteSendPhoneMessage(events.sendPhoneMessage(secrets), {}),
      );
      assert.equal(result, undefined);
      assert.deepEqual(
        deliveries.map((delivery) => delivery.to),
        [events.NUMBER],
      );
      assert.ok(ms < 200 + 1000, `took ${ms} ms`);
    }
  } finally {
    await hanging.close();
  }
});

test("a failed delivery fails as it would without mfa-whois, and nothing is posted", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("send-phone-message.js");
    action.deliver = async () => {
      throw new Error("provider said no");
    };
    await assert.rejects(
      captured(() => action.onExecuteSendPhoneMessage(events.sendPhoneMessage(secretsFor(stub.url)), {})),
      /provider said no/,
    );
    assert.equal(stub.requests.length, 0);
  } finally {
    await stub.close();
  }
});

test("the template as shipped refuses to run until deliver() is written", async () => {
  const action = loadAction("send-phone-message.js");
  await assert.rejects(
    action.onExecuteSendPhoneMessage(events.sendPhoneMessage({}), {}),
    /replace deliver\(\) with your phone provider's code/,
  );
});

test("recipients are reduced to + and digits; a message without one is not posted", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("send-phone-message.js");
    const secrets = secretsFor(stub.url);
    const { output } = await captured(async () => {
      await action.notifyMfaWhois(events.sendPhoneMessage(secrets, { recipient: "+1 (415) 555-0100" }));
      await action.notifyMfaWhois(events.sendPhoneMessage(secrets, { recipient: "" }));
      await action.notifyMfaWhois(events.sendPhoneMessage(secrets, { type: "whatsapp" }));
    });
    assert.equal(stub.requests.length, 1);
    assert.equal(JSON.parse(stub.requests[0].raw).phone.number, "+14155550100");
    assert.match(output, /not sent: the message has no recipient/);
    assert.match(output, /not sent: the message type is neither sms nor voice/);
  } finally {
    await stub.close();
  }
});
