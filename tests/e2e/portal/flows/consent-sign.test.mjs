// Flow: a patient signs a consent in the browser, on a phone-sized screen:
// open the link, verify with the date of birth, read the consent, tick each
// acknowledgement, type the name, "I agree and sign", see the confirmation,
// download the receipt. Then, with the CLI: the receipt verifies offline
// with the published key and CheckConsent is valid.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { startStack } from "../lib/stack.mjs";
import { mainText, newPage, openBrowser, screen } from "../lib/browser.mjs";
import { clickSign, fillConsent, openConsent, openLink, submitDob } from "../lib/portal.mjs";

let stack;
let browser;
before(async () => {
  stack = await startStack();
  browser = await openBrowser();
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

test("a patient signs a consent and the receipt verifies", async () => {
  const link = await stack.newConsentLink({ dob: "1984-02-29", name: "Alex Q. Patient" });
  assert.equal((await stack.checkConsent(link.patient)).reason, "CONSENT_CHECK_REASON_PENDING_SIGNATURE");
  const page = await newPage(browser, stack);

  const home = await page.goto("/");
  assert.equal(home.status(), 200);
  const headers = home.headers();
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.equal(headers["referrer-policy"], "no-referrer");
  await screen(page, "consent-01-welcome");

  await openLink(page, link);
  const cookies = await page.context().cookies();
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0].name, "__Host-careseal-portal");
  assert.ok(cookies[0].httpOnly && cookies[0].secure, "cookie HttpOnly and Secure");
  assert.equal(cookies[0].sameSite, "Strict");
  assert.equal(await page.getByLabel("Date of birth").getAttribute("type"), "date");
  await screen(page, "consent-02-verify");

  const verified = await submitDob(page, link.dob);
  assert.equal(verified.status(), 200);
  assert.equal(new URL(page.url()).pathname, "/tasks");
  assert.match(await mainText(page), /Read and sign: Consent to intravenous \(IV\) ketamine infusion therapy/);
  // A new session id after verification (no fixation).
  assert.notEqual((await page.context().cookies())[0].value, cookies[0].value);
  await screen(page, "consent-03-tasks");

  await openConsent(page);
  const text = await mainText(page);
  assert.match(text, /What the treatment is/);
  assert.match(text, /Your right to withdraw/);
  assert.match(text, /Signing electronically/);
  assert.match(text, /paper copy of this consent/);
  assert.match(text, /Consent to treatment: IV ketamine infusion therapy/);
  const ticked = await fillConsent(page, link.name);
  assert.equal(ticked, 8);
  await screen(page, "consent-04-form");
  const signed = await clickSign(page);
  assert.equal(signed.status(), 200);
  assert.match(new URL(page.url()).pathname, /^\/done\/\d+$/);
  assert.equal((await page.locator("h1").innerText()).trim(), "Thank you — your form is signed");
  assert.match(await page.getByRole("status").innerText(), /is signed/);
  await screen(page, "consent-05-signed");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download your signed receipt" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "consent-receipt.json");
  const receipt = stack.file("consent-receipt.json");
  await download.saveAs(receipt);
  assert.match(await readFile(receipt, "utf8"), /careseal\.consent-receipt-file\.v1/);

  // The CLI: the receipt verifies offline, and the consent is valid.
  const report = await stack.verifyReceipt(receipt);
  assert.match(report, /^VALID/m);
  assert.match(report, /printed name: +Alex Q\. Patient/);
  assert.match(report, /meaning: +Consent to treatment/);
  const check = await stack.checkConsent(link.patient);
  assert.equal(check.valid, true, JSON.stringify(check));
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_ACTIVE");

  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await page.waitForURL(/\/tasks$/);
  assert.match(await mainText(page), /Signed: Consent to intravenous .* download the receipt/);
  await screen(page, "consent-06-tasks-signed");

  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign out" }).click()]);
  assert.equal((await page.locator("h1").innerText()).trim(), "You are signed out");
  assert.deepEqual(await page.context().cookies(), []);
  await screen(page, "consent-07-signed-out");

  // No health data or link tokens in the logs.
  const logs = stack.logs();
  for (const [who, log] of Object.entries(logs)) {
    for (const secret of [link.dob, link.name, link.linkToken, link.signingToken]) {
      assert.ok(!log.includes(secret), `${who} log contains ${secret}`);
    }
  }
  assert.match(logs.portal, /GET \/l\/<redacted> 303/);
});
