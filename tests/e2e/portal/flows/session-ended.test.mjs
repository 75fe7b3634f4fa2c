// Negative: a form sent after the session ended is refused with the
// "session has ended" page and nothing is signed. The patient signs out in
// one tab (or the page is gone back to after signing out) and submits the
// consent form still open in another. Also the idle warning of portal.js
// (two minutes before the 15-minute idle logout), on the browser's clock.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { mainText, newPage, openBrowser, screen } from "../lib/browser.mjs";
import { clickSign, expectRefusal, fillConsent, openAndVerify, openConsent } from "../lib/portal.mjs";

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

const ended = {
  status: 401,
  title: "Your session has ended",
  says: /Nothing was signed\. Open the link from your clinic again/,
};

test("a form sent after signing out is refused and nothing is signed", async () => {
  const link = await stack.newConsentLink();
  const page = await newPage(browser, stack);
  await openAndVerify(page, link);
  await openConsent(page);
  await fillConsent(page, link.name);

  // Signed out in another tab of the same browser.
  const other = await page.context().newPage();
  await other.goto("/tasks");
  await Promise.all([other.waitForNavigation(), other.getByRole("button", { name: "Sign out" }).click()]);
  assert.equal((await other.locator("h1").innerText()).trim(), "You are signed out");

  await expectRefusal(page, await clickSign(page), ended);
  await screen(page, "refused-06-session-ended");
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");
  assert.equal((await stack.checkConsent(link.patient)).reason, "CONSENT_CHECK_REASON_PENDING_SIGNATURE");
});

test("going back to the form after signing out does not sign", async () => {
  const link = await stack.newConsentLink({ name: "Sam Back" });
  const page = await newPage(browser, stack);
  await openAndVerify(page, link);
  await openConsent(page);
  await fillConsent(page, link.name);
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign out" }).click()]);
  assert.equal((await page.locator("h1").innerText()).trim(), "You are signed out");

  const back = await page.goBack();
  // Pages are Cache-Control: no-store, so going back asks the portal again,
  // which has no session any more.
  assert.ok(back, "no navigation on going back");
  assert.equal(back.status(), 401);
  assert.equal((await page.locator("h1").innerText()).trim(), "Your session has ended");
  assert.equal(await page.getByRole("button", { name: "I agree and sign" }).count(), 0);
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");
});

test("the idle warning offers to stay signed in, and leaves an ended session", async () => {
  const link = await stack.newConsentLink({ name: "Ida Idle" });
  const page = await newPage(browser, stack);
  await page.clock.install();
  await openAndVerify(page, link);
  await openConsent(page);
  const warning = page.locator("#idle-warning");
  assert.equal(await warning.isVisible(), false);

  await page.clock.fastForward("13:00");
  await warning.waitFor({ state: "visible" });
  assert.match(await warning.innerText(), /signed out in 2 minutes/);
  const stay = page.getByRole("button", { name: "Stay signed in" });
  assert.equal(await stay.evaluate((el) => el === document.activeElement), true, "focus on Stay signed in");
  await screen(page, "consent-08-idle-warning", { fullPage: false });
  await stay.click();
  await warning.waitFor({ state: "hidden" });

  // Warned again later; meanwhile the session ended (signed out in another
  // tab): "Stay signed in" then leaves for the welcome page.
  await page.clock.fastForward("13:00");
  await warning.waitFor({ state: "visible" });
  const other = await page.context().newPage();
  await other.goto("/tasks");
  await Promise.all([other.waitForNavigation(), other.getByRole("button", { name: "Sign out" }).click()]);
  await Promise.all([page.waitForURL((u) => u.pathname === "/"), stay.click()]);
  assert.match(await mainText(page), /Open the link your clinic sent you/);
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");
});
