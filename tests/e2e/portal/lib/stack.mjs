// One CareSeal stack for a browser test: a real careseal-server (fresh
// SQLite database and key directory, the development certificates from
// certs-example/gen-certs.sh) and a real careseal-portal in front of it,
// both on loopback, set up with the real `careseal` CLI as the admin and
// the demo EHR. Each test file starts its own stack (startStack) and adds
// what its flow needs (newConsentLink, ...).
//
// Environment (set by run.sh): CARESEAL_BUILD (the CMake build directory),
// CARESEAL_E2E_CERTS (a directory made by gen-certs.sh, shared read-only;
// made here when unset).
import { execFile, spawn } from "node:child_process";
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const BUILD = resolve(process.env.CARESEAL_BUILD ?? join(ROOT, "build"));
const BIN = {
  server: join(BUILD, "services/server/careseal-server"),
  cli: join(BUILD, "clients/cli/careseal"),
  portal: join(BUILD, "clients/portal/careseal-portal"),
};
export const TENANT = "tenants/demo-clinic";
const PORTAL_ISSUER = "https://portal.careseal.example";

// Starts `cmd` and resolves with [child, match] once `pattern` appears in
// its combined output (written to `log`), or rejects after 20 s.
async function startAndWait(cmd, args, log, pattern) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const logs = [];
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      fail(new Error(`${cmd} did not start in 20 s:\n${out}`));
    }, 20000);
    const onData = (chunk) => {
      out += chunk;
      logs.push(chunk);
      const m = out.match(pattern);
      if (m && timer) {
        clearTimeout(timer);
        ok([child, m]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      writeFile(log, out).catch(() => {});
      fail(new Error(`${cmd} exited (${code}):\n${out}`));
    });
    child.logText = () => out;
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

export async function startStack() {
  const work = await mkdtemp(join(tmpdir(), "careseal-portal-e2e-"));
  let certs = process.env.CARESEAL_E2E_CERTS;
  if (!certs) {
    certs = join(work, "certs");
    await run("bash", [join(ROOT, "certs-example/gen-certs.sh"), certs]);
  }
  const C = (f) => join(certs, f);
  await mkdir(join(work, "keys"));
  const { randomBytes } = await import("node:crypto");
  await writeFile(join(work, "keys/master.key"), randomBytes(32), { mode: 0o600 });

  const [server, sm] = await startAndWait(
    BIN.server,
    [
      "--listen=127.0.0.1:0", `--tls-ca=${C("ca.crt")}`, `--tls-cert=${C("server.crt")}`,
      `--tls-key=${C("server.key")}`, `--db=${join(work, "careseal.db")}`,
      `--key-dir=${join(work, "keys")}`, "--shutdown_grace_seconds=1",
    ],
    join(work, "server.log"),
    /listening.*\(port (\d+),/,
  );
  const target = `localhost:${sm[1]}`;
  const stack = {
    work,
    certs,
    target,
    server,
    portal: null,
    baseURL: "",
    children: [server],
  };

  // The CLI as one of the development identities (admin, ehr-demo, portal,
  // clinician-demo, auditor-demo). Resolves with stdout; rejects with an
  // Error carrying code/stdout/stderr.
  stack.cli = async (who, ...args) => {
    const { stdout } = await run(BIN.cli, [
      "--target", target, "--ca", C("ca.crt"), "--cert", C(`${who}.crt`),
      "--key", C(`${who}.key`), ...args,
    ]);
    return stdout;
  };
  stack.json = async (who, ...args) => JSON.parse(await stack.cli(who, ...args));
  // The CLI call that must fail: resolves with its error output.
  stack.cliFails = async (who, ...args) => {
    try {
      const out = await stack.cli(who, ...args);
      throw new Error(`expected to fail: careseal ${args.join(" ")}\n${out}`);
    } catch (e) {
      if (e.code === undefined) throw e;
      return `${e.stdout}${e.stderr}`;
    }
  };

  try {
    // The clinic, its consent document, and the portal as its patients'
    // token issuer (the portal signs patient JWTs with a key made here).
    await stack.json("admin", "admin", "tenant", "create", "--id", "demo-clinic",
      "--display-name", "Demo clinic", "--time-zone", "America/Chicago");
    await stack.cli("ehr-demo", "consent", "template", "create", "--tenant", "demo-clinic",
      "--id", "ketamine", "--display-name", "IV ketamine");
    await stack.cli("ehr-demo", "consent", "template", "publish", "--template",
      `${TENANT}/consentTemplates/ketamine`, "--file",
      join(ROOT, "scripts/demo/ketamine-consent-v1.json"));
    const tokenKey = join(work, "portal-token.key");
    const { stdout: jwks } = await run(BIN.portal, [
      "--generate_token_key", tokenKey, "--token_kid", "portal-1",
    ]);
    await writeFile(join(work, "portal-jwks.json"), jwks);
    await stack.json("admin", "admin", "issuer", "register", TENANT, "--id", "portal",
      "--issuer-uri", PORTAL_ISSUER, "--kind", "portal",
      "--peer", "spiffe://careseal.local/portal", "--jwks-file", join(work, "portal-jwks.json"));

    // The portal serves HTTPS with the development server certificate
    // (valid for localhost); the browser pins its key (see browser.mjs).
    const [portal, pm] = await startAndWait(
      BIN.portal,
      [
        "--listen", "127.0.0.1:0", "--tls_cert", C("server.crt"), "--tls_key", C("server.key"),
        "--target", target, "--ca", C("ca.crt"), "--cert", C("portal.crt"),
        "--key", C("portal.key"), "--token_issuer", PORTAL_ISSUER, "--token_kid", "portal-1",
        "--token_key", tokenKey, "--static_dir", join(ROOT, "clients/portal/static"),
      ],
      join(work, "portal.log"),
      /serving https:\/\/[^:]+:(\d+)/,
    );
    stack.portal = portal;
    stack.children.push(portal);
    stack.baseURL = `https://localhost:${pm[1]}`;
  } catch (e) {
    await stack_stop(stack);
    throw e;
  }

  let patients = 0;
  // A patient with a pending consent and a one-time DOB link to it, as the
  // EHR makes them. `path` is the portal link /l/<link token>/<signing token>.
  stack.newConsentLink = async ({ dob = "1984-02-29", name = "Alex Q. Patient" } = {}) => {
    patients += 1;
    const patient = (await stack.json("ehr-demo", "admin", "patient", "create", TENANT,
      "--external-id", `MRN-E2E-${patients}`, "--display-name", name, "--dob", dob)).patient.name;
    const req = await stack.json("ehr-demo", "consent", "request", "--patient", patient,
      "--procedure", "ketamine-iv-induction");
    const link = await stack.json("ehr-demo", "admin", "link", "create", patient,
      "--target", req.consent.name, "--factor", "dob");
    return {
      patient,
      dob,
      name,
      consent: req.consent.name,
      signingToken: req.signing_token,
      linkToken: link.link_token,
      path: `/l/${link.link_token}/${req.signing_token}`,
    };
  };
  // CheckConsent as the EHR: {valid, reason, ...}.
  stack.checkConsent = (patient) => stack.json("ehr-demo", "consent", "check",
    "--patient", patient, "--procedure", "ketamine-iv-induction");
  stack.consentState = async (name) =>
    (await stack.json("ehr-demo", "consent", "show", name)).consent.state;
  // Verifies a receipt file offline with the service's published key(s):
  // resolves with the CLI's report, rejects when it does not say VALID.
  stack.verifyReceipt = async (file) => {
    const keys = join(work, "pub");
    await mkdir(keys, { recursive: true });
    await stack.cli("ehr-demo", "consent", "keys", "--out-dir", keys);
    const pems = (await readdir(keys)).filter((f) => f.endsWith(".pem"));
    if (pems.length === 0) throw new Error("no published signing key");
    const { stdout } = await run(BIN.cli, [
      "consent", "verify", file, "--public-key", join(keys, pems[0]),
    ]);
    return stdout;
  };
  stack.logs = () => ({
    server: server.logText?.() ?? "",
    portal: stack.portal?.logText?.() ?? "",
  });
  stack.stop = () => stack_stop(stack);
  return stack;
}

async function stack_stop(stack) {
  for (const child of [...stack.children].reverse()) await stopChild(child);
  if (process.env.CARESEAL_E2E_KEEP) {
    console.log(`# kept ${stack.work}`);
  } else {
    await rm(stack.work, { recursive: true, force: true });
  }
}

export { readFile };
