// Test support for the Actions: a local stand-in for mfa-whois, console capture, signatures.
// (node --test also runs this file; it defines no tests.)
const crypto = require("node:crypto");
const http = require("node:http");
const path = require("node:path");

const SECRET = "test-action-secret-5f0c9a1e7b2d4c8e";

/** A local HTTP server that records each request and answers as `mode` says: "ok", "error", "hang". */
async function startStub(mode = "ok") {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      requests.push({ method: req.method, url: req.url, headers: req.headers, raw, at: Date.now() });
      if (mode === "hang") return; // never answers
      const status = mode === "error" ? 500 : 200;
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(status === 200 ? '{"status":"applied"}' : '{"detail":"boom"}');
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A URL on which nothing listens (connection refused). */
async function closedUrl() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** Run `work` with console output captured; resolves to {result, output, ms}. */
async function captured(work) {
  const lines = [];
  const saved = {};
  for (const name of ["log", "info", "warn", "error", "debug"]) {
    saved[name] = console[name];
    console[name] = (...args) => lines.push(args.map(String).join(" "));
  }
  const started = Date.now();
  try {
    const result = await work();
    return { result, output: lines.join("\n"), ms: Date.now() - started };
  } finally {
    Object.assign(console, saved);
  }
}

/** Whether a recorded request carries a valid signature by `secret` over "<timestamp>.<raw body>". */
function signatureValid(request, secret = SECRET) {
  const timestamp = request.headers["x-whois-timestamp"];
  const expected = crypto.createHmac("sha256", secret).update(`${timestamp}.${request.raw}`).digest("hex");
  return request.headers["x-whois-signature"] === `v1=${expected}`;
}

/** A fresh copy of an Action file from actions/. */
function loadAction(file) {
  const full = path.join(__dirname, "..", file);
  delete require.cache[require.resolve(full)];
  return require(full);
}

/** The secrets an Action gets in Auth0, pointing at `url`. */
function secretsFor(url, extra = {}) {
  return { MFA_WHOIS_URL: url, MFA_WHOIS_ACTION_SECRET: SECRET, ...extra };
}

module.exports = { SECRET, startStub, closedUrl, captured, signatureValid, loadAction, secretsFor };
