// Auth0 runs each Action on its own, so the shared block is copied into every Action file:
// the copies must stay identical, and the Actions may use Node's built-in modules only.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { builtinModules } = require("node:module");

const ROOT = path.join(__dirname, "..");
const ACTIONS = ["post-user-registration.js", "post-login.js", "send-phone-message.js", "custom-phone-provider.js"];
const BEGIN = "// ---- mfa-whois shared code: begin ----";
const END = "// ---- mfa-whois shared code: end ----";

function source(file) {
  return fs.readFileSync(path.join(ROOT, file), "utf8");
}

test("every Action in actions/ is listed here", () => {
  const found = fs.readdirSync(ROOT).filter((name) => name.endsWith(".js")).sort();
  assert.deepEqual(found, [...ACTIONS].sort());
});

test("the shared block is identical in every Action", () => {
  const blocks = ACTIONS.map((file) => {
    const text = source(file);
    assert.equal(text.split(BEGIN).length, 2, `${file}: one begin marker`);
    assert.equal(text.split(END).length, 2, `${file}: one end marker`);
    return text.slice(text.indexOf(BEGIN), text.indexOf(END) + END.length);
  });
  assert.ok(blocks[0].length > 1000, "the block holds the shared code");
  for (let index = 1; index < blocks.length; index += 1) {
    assert.equal(blocks[index], blocks[0], `${ACTIONS[index]} differs from ${ACTIONS[0]}`);
  }
});

test("the Actions require Node built-ins only (nothing to install in Auth0)", () => {
  for (const file of ACTIONS) {
    const required = [...source(file).matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)].map((match) => match[1]);
    for (const name of required) {
      assert.ok(builtinModules.includes(name.replace(/^node:/, "")), `${file} requires ${name}`);
    }
  }
});

test("each Action exports the handler its trigger calls", () => {
  const handlers = {
    "post-user-registration.js": "onExecutePostUserRegistration",
    "post-login.js": "onExecutePostLogin",
    "send-phone-message.js": "onExecuteSendPhoneMessage",
    "custom-phone-provider.js": "onExecuteCustomPhoneProvider",
  };
  for (const [file, handler] of Object.entries(handlers)) {
    const action = require(path.join(ROOT, file));
    assert.equal(typeof action[handler], "function", `${file} exports ${handler}`);
    assert.equal(typeof action.notifyMfaWhois, "function", `${file} exports notifyMfaWhois`);
  }
});
