const { test } = require("node:test");
const assert = require("node:assert/strict");
const events = require("./events");
const { startStub, captured, loadAction, secretsFor, signatureValid } = require("./helpers");

/** Run the post-login Action once per event against one stub; the bodies it posted. */
async function posted(eventsToRun, mode = "ok") {
  const stub = await startStub(mode);
  try {
    const action = loadAction("post-login.js");
    const denied = [];
    const api = { access: { deny: (reason) => denied.push(reason) } };
    const { output } = await captured(async () => {
      for (const make of eventsToRun) await action.onExecutePostLogin(make(secretsFor(stub.url)), api);
    });
    assert.deepEqual(denied, [], "a login is never denied");
    for (const request of stub.requests) assert.ok(signatureValid(request));
    return { bodies: stub.requests.map((request) => JSON.parse(request.raw)), output };
  } finally {
    await stub.close();
  }
}

test("a login with an SMS/voice MFA challenge is posted as user.login with its methods and factors", async () => {
  const { bodies, output } = await posted([(secrets) => events.postLogin(secrets)]);
  assert.equal(bodies.length, 1);
  const [body] = bodies;
  assert.equal(body.type, "user.login");
  assert.match(body.id, /^user\.login:[0-9a-f]{32}$/);
  assert.match(body.occurred_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(body.user.user_id, "auth0|65a1b2c3d4e5f6a7b8c9d0e1");
  assert.deepEqual(body.user.multifactor, ["guardian"]);
  assert.deepEqual(body.login, {
    methods: [{ name: "pwd" }, { name: "mfa", type: "phone" }],
    enrolled_factors: ["phone"],
  });
  assert.equal(body.phone, undefined);
  assert.match(output, /user\.login sent/);
});

test("a phone factor enrolled is reason enough, and so is a passwordless SMS or phone reset login", async () => {
  const noPhoneUsed = [{ name: "pwd", timestamp: "2026-11-27T09:40:00.000Z" }];
  const { bodies } = await posted([
    (secrets) => events.postLogin(secrets, { methods: noPhoneUsed }),
    (secrets) =>
      events.postLogin(secrets, { methods: [{ name: "sms", timestamp: "2026-11-27T09:42:00.000Z" }], enrolledFactors: [] }),
    (secrets) =>
      events.postLogin(secrets, {
        methods: [{ name: "phone_number", timestamp: "2026-11-27T09:43:00.000Z" }],
        enrolledFactors: [],
      }),
  ]);
  assert.equal(bodies.length, 3);
  assert.deepEqual(bodies[0].login, { methods: [{ name: "pwd" }], enrolled_factors: ["phone"] });
  assert.deepEqual(bodies[1].login, { methods: [{ name: "sms" }], enrolled_factors: [] });
});

test("logins without any phone, and refresh-token exchanges, make no request", async () => {
  const { bodies, output } = await posted([
    (secrets) =>
      events.postLogin(secrets, {
        methods: [{ name: "pwd" }, { name: "mfa", type: "otp" }],
        enrolledFactors: [{ type: "otp" }, { type: "webauthn-roaming" }],
      }),
    (secrets) => events.postLogin(secrets, { methods: [{ name: "federated" }], enrolledFactors: [] }),
    (secrets) => events.postLogin(secrets, { protocol: "oauth2-refresh-token" }),
  ]);
  assert.equal(bodies.length, 0);
  assert.equal(output, "", "nothing to say for an ordinary login");
});

test("the same login gets the same id; the user's next login another one", async () => {
  const next = (secrets) => {
    const event = events.postLogin(secrets);
    event.transaction.id = "tx_9b31";
    event.stats.logins_count = 43;
    return event;
  };
  const { bodies } = await posted([(s) => events.postLogin(s), (s) => events.postLogin(s), next]);
  assert.equal(bodies[0].id, bodies[1].id);
  assert.notEqual(bodies[0].id, bodies[2].id);
});

test("a login event with nothing that names it gets a fresh id each time", async () => {
  const bare = (secrets) => {
    const event = events.postLogin(secrets, { methods: [{ name: "mfa", type: "phone" }] });
    delete event.transaction;
    delete event.stats;
    return event;
  };
  const { bodies } = await posted([bare, bare]);
  assert.equal(bodies.length, 2);
  assert.match(bodies[0].id, /^user\.login:[0-9a-f-]{36}$/);
  assert.notEqual(bodies[0].id, bodies[1].id);
});

test("a malformed event (no user, odd methods) neither throws nor posts", async () => {
  const { bodies, output } = await posted([
    (secrets) => ({ secrets }),
    (secrets) => ({ secrets, user: { user_id: "auth0|x", enrolledFactors: "phone" }, authentication: { methods: [null, 7] } }),
  ]);
  assert.equal(bodies.length, 0);
  assert.match(output, /user\.login not sent: the event has no user_id/);
});
