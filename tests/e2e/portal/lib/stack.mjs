// One CareSeal stack for the browser tests: a real careseal-server (fresh
// SQLite database and key directory, the development certificates from
// certs-example/gen-certs.sh) and a real careseal-portal in front of it,
// both on loopback, set up with the real `careseal` CLI as the admin (the
// tenant, the portal's token issuer) and the demo EHR (the consent
// document). Each flow adds what it needs for its own new patient
// (newConsentLink, ...), so flows share one stack without seeing each
// other: run.sh starts it once (serve.mjs) and startStack() attaches to it;
// without run.sh, startStack() starts a stack of its own.
//
// Environment (set by run.sh): CARESEAL_BUILD (the CMake build directory),
// CARESEAL_E2E_CERTS (a directory made by gen-certs.sh, shared read-only;
// made here when unset), CARESEAL_E2E_STACK (serve.mjs's stack.json).
import { execFile, spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";

const run = promisify(execFile);
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const BUILD = resolve(process.env.CARESEAL_BUILD ?? join(ROOT, "build"));
const BIN = {
  server: join(BUILD, "services/server/careseal-server"),
  cli: join(BUILD, "clients/cli/careseal"),
  portal: join(BUILD, "clients/portal/careseal-portal"),
};
export const TENANT = "tenants/demo-clinic";
// The clinic's time zone: the tenant's, the portal's --time_zone and the
// browser's (browser.mjs).
export const TIME_ZONE = "America/Chicago";
export const PROCEDURE = "ketamine-iv-induction";
const PORTAL_ISSUER = "https://portal.careseal.example";

// Starts `cmd` and resolves with [child, match] once `pattern` appears in
// its combined output (also written to the file `log`), or rejects after
// 20 s.
async function startAndWait(cmd, args, log, pattern) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const file = createWriteStream(log);
  let out = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      fail(new Error(`${cmd} did not start in 20 s:\n${out}`));
    }, 20000);
    const onData = (chunk) => {
      file.write(chunk);
      if (out === null) return;
      out += chunk;
      const m = out.match(pattern);
      if (m) {
        clearTimeout(timer);
        out = null;
        ok([child, m]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      file.end();
      fail(new Error(`${cmd} exited (${code}):\n${out}`));
    });
  });
}

async function stopChild(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once("exit", ok));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

// Starts the services and sets up the clinic. Resolves with the stack's
// description ({work, certs, target, baseURL, serverLog, portalLog}) and
// the children to stop.
async function launch() {
  const work = await mkdtemp(join(tmpdir(), "careseal-portal-e2e-"));
  const children = [];
  try {
    let certs = process.env.CARESEAL_E2E_CERTS;
    if (!certs) {
      certs = join(work, "certs");
      await run("bash", [join(ROOT, "certs-example/gen-certs.sh"), certs]);
    }
    const C = (f) => join(certs, f);
    await mkdir(join(work, "keys"));
    await writeFile(join(work, "keys/master.key"), randomBytes(32), { mode: 0o600 });
    const desc = {
      work,
      certs,
      serverLog: join(work, "server.log"),
      portalLog: join(work, "portal.log"),
    };
    const [server, sm] = await startAndWait(
      BIN.server,
      [
        "--listen=127.0.0.1:0", `--tls-ca=${C("ca.crt")}`, `--tls-cert=${C("server.crt")}`,
        `--tls-key=${C("server.key")}`, `--db=${join(work, "careseal.db")}`,
        `--key-dir=${join(work, "keys")}`, "--shutdown_grace_seconds=1",
      ],
      desc.serverLog,
      /listening.*\(port (\d+),/,
    );
    children.push(server);
    desc.target = `localhost:${sm[1]}`;
    const stack = withHelpers(desc);

    // The clinic, its consent document, and the portal as its patients'
    // token issuer (the portal signs patient JWTs with a key made here).
    await stack.json("admin", "admin", "tenant", "create", "--id", "demo-clinic",
      "--display-name", "Demo clinic", "--time-zone", TIME_ZONE);
    await stack.cli("ehr-demo", "consent", "template", "create", "--tenant", "demo-clinic",
      "--id", "ketamine", "--display-name", "IV ketamine");
    await stack.cli("ehr-demo", "consent", "template", "publish", "--template",
      `${TENANT}/consentTemplates/ketamine`, "--file",
      join(ROOT, "scripts/demo/ketamine-consent-v1.json"));
    // The clinic's pre-infusion instructions (EHR), the default for every
    // session (admin).
    await stack.json("ehr-demo", "sessions", "instructions", "--tenant", "demo-clinic",
      "--id", "pre-infusion", "--display-name", "Before an infusion", "--file",
      join(ROOT, "tests/e2e/portal/fixtures/pre-infusion-instructions.json"));
    await stack.json("admin", "sessions", "settings", "--tenant", "demo-clinic",
      "--default-template", `${TENANT}/instructionTemplates/pre-infusion`);
    const tokenKey = join(work, "portal-token.key");
    const { stdout: jwks } = await run(BIN.portal, [
      "--generate_token_key", tokenKey, "--token_kid", "portal-1",
    ]);
    await writeFile(join(work, "portal-jwks.json"), jwks);
    await stack.json("admin", "admin", "issuer", "register", TENANT, "--id", "portal",
      "--issuer-uri", PORTAL_ISSUER, "--kind", "portal",
      "--peer", "spiffe://careseal.local/portal", "--jwks-file", join(work, "portal-jwks.json"));

    // The portal serves HTTPS with the development server certificate
    // (valid for localhost).
    const [portal, pm] = await startAndWait(
      BIN.portal,
      [
        "--listen", "127.0.0.1:0", "--tls_cert", C("server.crt"), "--tls_key", C("server.key"),
        "--target", desc.target, "--ca", C("ca.crt"), "--cert", C("portal.crt"),
        "--key", C("portal.key"), "--token_issuer", PORTAL_ISSUER, "--token_kid", "portal-1",
        "--token_key", tokenKey, "--static_dir", join(ROOT, "clients/portal/static"),
        // The clinic's time zone, for times shown and entered (docs/PORTAL.md).
        "--time_zone", TIME_ZONE,
      ],
      desc.portalLog,
      /serving https:\/\/[^:]+:(\d+)/,
    );
    children.push(portal);
    desc.baseURL = `https://localhost:${pm[1]}`;
    return { work, desc, children };
  } catch (e) {
    await stopAll({ work, children });
    throw e;
  }
}

async function stopAll({ work, children }) {
  for (const child of [...children].reverse()) await stopChild(child);
  if (process.env.CARESEAL_E2E_KEEP) {
    console.log(`# kept ${work}`);
  } else {
    await rm(work, { recursive: true, force: true });
  }
}

// The stack run.sh started (CARESEAL_E2E_STACK), or a new one of this
// process's own (always with {own: true}). stop() stops only a stack this
// process started.
//
// The browser reaches the portal from 127.0.0.1 in every flow, and the
// identity service allows 20 link redemptions (right or wrong) per client
// address per 10 minutes (kRedeemAttemptsPerAddress): the flows on the
// shared stack use 12 together now. A flow that verifies many times (the
// lockout flow) takes its own stack.
export async function startStack({ own = false } = {}) {
  const shared = own ? undefined : process.env.CARESEAL_E2E_STACK;
  if (shared) {
    const stack = withHelpers(JSON.parse(await readFile(shared, "utf8")));
    stack.stop = async () => {};
    return stack;
  }
  const launched = await launch();
  const stack = withHelpers(launched.desc);
  stack.stop = () => stopAll(launched);
  return stack;
}

// For serve.mjs: starts a stack, calls ready(description), and stops the
// stack on SIGTERM or SIGINT.
export async function serveStack(ready) {
  const own = await launch();
  try {
    const stop = new Promise((ok) => {
      process.once("SIGTERM", ok);
      process.once("SIGINT", ok);
    });
    await ready(own.desc);
    await stop;
  } finally {
    await stopAll(own);
  }
}

// The helpers flows use, over a stack's description.
function withHelpers(desc) {
  const C = (f) => join(desc.certs, f);
  const stack = { ...desc };

  // The CLI as one of the development identities (admin, ehr-demo, portal,
  // clinician-demo, auditor-demo). Resolves with stdout; rejects with an
  // Error carrying code/stdout/stderr.
  stack.cli = async (who, ...args) => {
    const { stdout } = await run(BIN.cli, [
      "--target", desc.target, "--ca", C("ca.crt"), "--cert", C(`${who}.crt`),
      "--key", C(`${who}.key`), ...args,
    ]);
    return stdout;
  };
  stack.json = async (who, ...args) => JSON.parse(await stack.cli(who, ...args));
  // A CLI call that must fail: resolves with its output.
  stack.cliFails = async (who, ...args) => {
    let out;
    try {
      out = await stack.cli(who, ...args);
    } catch (e) {
      return `${e.stdout ?? ""}${e.stderr ?? ""}`;
    }
    throw new Error(`expected to fail: careseal ${args.join(" ")}\n${out}`);
  };

  // A new patient registered in identity (the EHR's `admin patient create`).
  stack.newPatient = async ({ dob = "1984-02-29", name = "Alex Q. Patient" } = {}) => {
    const mrn = `MRN-E2E-${randomBytes(6).toString("hex")}`;
    const created = await stack.json("ehr-demo", "admin", "patient", "create", TENANT,
      "--external-id", mrn, "--display-name", name, "--dob", dob);
    return { patient: created.patient.name, dob, name };
  };
  // A new patient with a pending consent and the portal link the EHR sends
  // for it (docs/PORTAL.md, "Links"): `careseal consent request` prints the
  // signing token, which is itself the date-of-birth link, so `path` is
  // /l/<signing token>. With {twoToken: true} the EHR makes a link of its
  // own to the consent (`admin link create --target`) and sends
  // /l/<link token>/<signing token>.
  stack.newConsentLink = async ({ twoToken = false, ...options } = {}) => {
    const p = await stack.newPatient(options);
    const req = await stack.json("ehr-demo", "consent", "request", "--patient", p.patient,
      "--procedure", PROCEDURE);
    const out = {
      ...p,
      consent: req.consent.name,
      signingToken: req.signing_token,
      linkToken: req.signing_token,
      path: `/l/${req.signing_token}`,
    };
    if (twoToken) {
      const link = await stack.json("ehr-demo", "admin", "link", "create", p.patient,
        "--target", req.consent.name, "--factor", "dob");
      out.linkToken = link.link_token;
      out.path = `/l/${link.link_token}/${req.signing_token}`;
    }
    return out;
  };
  // A date-of-birth link to the patient's task list (no target): /l/<token>.
  stack.newTaskLink = async (p) => {
    const link = await stack.json("ehr-demo", "admin", "link", "create", p.patient,
      "--factor", "dob");
    return { ...p, linkToken: link.link_token, path: `/l/${link.link_token}` };
  };

  // Pre-session (the EHR schedules; readiness as the EHR).
  stack.scheduleSession = async (patient, start, { location = "Suite 2" } = {}) => {
    const made = await stack.json("ehr-demo", "sessions", "schedule", "--patient", patient,
      "--procedure", PROCEDURE, "--kind", "maintenance", "--start", start.toISOString(),
      "--location", location);
    return made.session;
  };
  stack.readiness = async (session) =>
    (await stack.json("ehr-demo", "sessions", "readiness", session)).readiness;

  // Follow-up (the clinician sends check-ins and reads the safety queue).
  stack.sendCheckIn = async (patient, instruments, note) => {
    const args = ["followup", "send", "--patient", patient];
    for (const i of instruments) args.push("--instrument", i);
    if (note) args.push("--note", note);
    return (await stack.json("clinician-demo", ...args)).check_in;
  };
  stack.escalations = async (patient) =>
    (await stack.json("clinician-demo", "followup", "escalations", "--parent", patient))
      .escalations ?? [];
  stack.responses = async (patient) =>
    (await stack.json("clinician-demo", "followup", "responses", "--patient", patient))
      .responses ?? [];

  // Messaging (the clinician): a new thread ({patient, subject, text}) or a
  // message in one ({thread, text}); resolves with the sent message.
  stack.sendMessage = async ({ patient, subject, thread, text, urgent = false }) => {
    const args = ["messages", "send", "--text", text];
    if (thread) args.push("--thread", thread);
    else args.push("--patient", patient, "--subject", subject);
    if (urgent) args.push("--urgent");
    return (await stack.json("clinician-demo", ...args)).message;
  };
  // A thread's messages, newest first, as the clinician sees them.
  stack.messages = async (thread) =>
    (await stack.json("clinician-demo", "messages", "list", "--thread", thread)).messages ?? [];

  // CheckConsent as the EHR: {valid, reason, ...}.
  stack.checkConsent = (patient) => stack.json("ehr-demo", "consent", "check",
    "--patient", patient, "--procedure", PROCEDURE);
  stack.consentState = async (name) =>
    (await stack.json("ehr-demo", "consent", "show", name)).consent.state;
  // Verifies a receipt file offline (`careseal consent verify`, no server)
  // with the service's published key: resolves with the CLI's report;
  // rejects when the CLI says it is not valid.
  stack.verifyReceipt = async (file) => {
    const keys = await mkdtemp(join(desc.work, "pub-"));
    await stack.cli("ehr-demo", "consent", "keys", "--out-dir", keys);
    const pems = (await readdir(keys)).filter((f) => f.endsWith(".pem"));
    if (pems.length === 0) throw new Error("no published signing key");
    const { stdout } = await run(BIN.cli, [
      "consent", "verify", file, "--public-key", join(keys, pems[0]),
    ]);
    return stdout;
  };
  // A new file name in the stack's directory.
  stack.file = (name) => join(desc.work, `${randomBytes(6).toString("hex")}-${name}`);
  // The services' logs so far.
  stack.logs = () => ({
    server: readFileSync(desc.serverLog, "utf8"),
    portal: readFileSync(desc.portalLog, "utf8"),
  });
  return stack;
}
