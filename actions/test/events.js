// Sample Auth0 Action events, shaped like Auth0's documented event objects.
// (node --test also runs this file; it defines no tests.)

const NUMBER = "+14155550100";
const CODE = "734519";

function user(overrides = {}) {
  return {
    user_id: "auth0|65a1b2c3d4e5f6a7b8c9d0e1",
    email: "jane@example.com",
    name: "Jane Doe",
    phone_number: "+14155550177",
    phone_verified: false,
    created_at: "2026-11-27T09:40:58.123Z",
    multifactor: ["guardian"],
    enrolledFactors: [{ type: "phone", options: { sms: true } }],
    identities: [
      {
        connection: "Username-Password-Authentication",
        provider: "auth0",
        user_id: "65a1b2c3d4e5f6a7b8c9d0e1",
        isSocial: false,
        accessToken: "secret-identity-token",
      },
      {
        connection: "sms",
        provider: "sms",
        user_id: "560ebaeef609ee1adaa7c551",
        isSocial: false,
        profileData: { phone_number: "+14155550188", phone_verified: true, nickname: "jd" },
      },
    ],
    ...overrides,
  };
}

function postUserRegistration(secrets, overrides = {}) {
  return {
    secrets,
    connection: { id: "con_1", name: "Username-Password-Authentication", strategy: "auth0" },
    request: { ip: "203.0.113.9", method: "POST" },
    tenant: { id: "acme" },
    user: user(overrides),
  };
}

function postLogin(secrets, { methods, enrolledFactors, protocol, userOverrides } = {}) {
  return {
    secrets,
    authentication: {
      methods: methods || [
        { name: "pwd", timestamp: "2026-11-27T09:40:00.000Z" },
        { name: "mfa", type: "phone", timestamp: "2026-11-27T09:41:00.000Z" },
      ],
    },
    stats: { logins_count: 42 },
    transaction: { id: "tx_8f2a", protocol: protocol || "oidc-basic-profile" },
    tenant: { id: "acme" },
    user: user({ ...(enrolledFactors ? { enrolledFactors } : {}), ...(userOverrides || {}) }),
  };
}

function sendPhoneMessage(secrets, { action = "second-factor-authentication", type = "sms", recipient = NUMBER } = {}) {
  return {
    secrets,
    message_options: {
      action,
      code: CODE,
      message_type: type,
      recipient,
      text: `${CODE} is your verification code for Acme`,
    },
    request: { ip: "203.0.113.9", method: "POST" },
    tenant: { id: "acme" },
    user: user(),
  };
}

function customPhoneProvider(secrets, { messageType = "otp_verify", method = "text", recipient = "+1-415-555-0100" } = {}) {
  return {
    secrets,
    notification: {
      as_text: `Your code is ${CODE}`,
      as_voice: `Your code is ${CODE.split("").join(". ")}`,
      delivery_method: method,
      message_type: messageType,
      recipient,
      code: CODE,
      locale: "en-US",
      from: "+14155552222",
    },
    connection: { id: "con_1", name: "Username-Password-Authentication", strategy: "auth0" },
    transaction: { correlation_id: "abcefg123" },
    tenant: { id: "acme" },
    user: user(),
  };
}

module.exports = { NUMBER, CODE, user, postUserRegistration, postLogin, sendPhoneMessage, customPhoneProvider };
