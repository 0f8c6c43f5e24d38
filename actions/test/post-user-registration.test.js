const { test } = require("node:test");
const assert = require("node:assert/strict");
const events = require("./events");
const { startStub, captured, loadAction, secretsFor, signatureValid } = require("./helpers");

const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

test("a new account is posted as user.registered, signed, in the contract's shape", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("post-user-registration.js");
    const before = Math.floor(Date.now() / 1000);
    const { output } = await captured(() =>
      action.onExecutePostUserRegistration(events.postUserRegistration(secretsFor(stub.url)), {}),
    );
    assert.equal(stub.requests.length, 1);
    const [request] = stub.requests;
    assert.equal(request.method, "POST");
    assert.equal(request.url, "/hooks/auth0/action");
    assert.equal(request.headers["content-type"], "application/json");
    const timestamp = Number(request.headers["x-whois-timestamp"]);
    assert.ok(timestamp >= before && timestamp <= before + 5, `timestamp ${timestamp}`);
    assert.match(request.headers["x-whois-signature"], /^v1=[0-9a-f]{64}$/);
    assert.ok(signatureValid(request), "signature over <timestamp>.<raw body> with the secret");
    assert.ok(!signatureValid(request, "another-secret"));

    const body = JSON.parse(request.raw);
    assert.match(body.id, /^user\.registered:[0-9a-f]{32}$/);
    assert.match(body.occurred_at, ISO_SECONDS);
    assert.deepEqual(body, {
      id: body.id,
      type: "user.registered",
      occurred_at: body.occurred_at,
      user: {
        user_id: "auth0|65a1b2c3d4e5f6a7b8c9d0e1",
        email: "jane@example.com",
        name: "Jane Doe",
        phone_number: "+14155550177",
        phone_verified: false,
        created_at: "2026-11-27T09:40:58.123Z",
        identities: [
          {
            provider: "auth0",
            connection: "Username-Password-Authentication",
            user_id: "65a1b2c3d4e5f6a7b8c9d0e1",
            isSocial: false,
            profileData: {},
          },
          {
            provider: "sms",
            connection: "sms",
            user_id: "560ebaeef609ee1adaa7c551",
            isSocial: false,
            profileData: { phone_number: "+14155550188", phone_verified: true },
          },
        ],
        multifactor: ["guardian"],
      },
    });
    assert.ok(!request.raw.includes("secret-identity-token"), "identity tokens are never forwarded");
    assert.match(output, /mfa-whois: user\.registered sent/);
  } finally {
    await stub.close();
  }
});

test("the same registration gets the same id; another account another one", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("post-user-registration.js");
    const secrets = secretsFor(stub.url);
    await captured(async () => {
      await action.onExecutePostUserRegistration(events.postUserRegistration(secrets), {});
      await action.onExecutePostUserRegistration(events.postUserRegistration(secrets), {});
      await action.onExecutePostUserRegistration(
        events.postUserRegistration(secrets, { user_id: "sms|6613a0f1e2d3c4b5a6978899" }),
        {},
      );
    });
    const ids = stub.requests.map((request) => JSON.parse(request.raw).id);
    assert.equal(ids[0], ids[1]);
    assert.notEqual(ids[0], ids[2]);
  } finally {
    await stub.close();
  }
});

test("Actions identities written with a provider prefix are sent as the Management API writes them", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("post-user-registration.js");
    const event = events.postUserRegistration(secretsFor(stub.url), {
      user_id: "sms|6613a0f1e2d3c4b5a6978899",
      phone_number: "+14155550100",
      identities: [{ connection: "sms", provider: "sms", user_id: "sms|6613a0f1e2d3c4b5a6978899", isSocial: false }],
    });
    await captured(() => action.onExecutePostUserRegistration(event, {}));
    const body = JSON.parse(stub.requests[0].raw);
    assert.equal(body.user.identities[0].user_id, "6613a0f1e2d3c4b5a6978899");
    assert.equal(body.user.phone_number, "+14155550100");
  } finally {
    await stub.close();
  }
});

test("an event without a user posts nothing", async () => {
  const stub = await startStub("ok");
  try {
    const action = loadAction("post-user-registration.js");
    const { output } = await captured(() =>
      action.onExecutePostUserRegistration({ secrets: secretsFor(stub.url), user: {} }, {}),
    );
    assert.equal(stub.requests.length, 0);
    assert.match(output, /user\.registered not sent: the event has no user_id/);
  } finally {
    await stub.close();
  }
});
