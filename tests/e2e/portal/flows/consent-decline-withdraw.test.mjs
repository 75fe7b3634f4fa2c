// Flow: the patient's other choices about a consent. One patient opens the
// form, follows "I do not want to sign this form", reads what declining
// means, leaves a note and presses "Decline this form": "You declined this
// form"; the EHR sees the consent REJECTED and CheckConsent not valid.
// Another signs, then from a later task-list link finds the form under
// "Your signed forms", follows "Withdraw my consent", reads that it takes
// effect at once and confirms: "Your consent is withdrawn"; CheckConsent
// answers WITHDRAWN.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { mainText, newPage, openBrowser, screen } from "../lib/browser.mjs";
import { openAndVerify, openConsent, signConsent } from "../lib/portal.mjs";

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

async function press(page, name) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole("button", { name }).click(),
  ]);
  return response;
}

test("a patient declines a form: nothing is signed and the clinic sees REJECTED", async () => {
  const link = await stack.newConsentLink({ name: "Dana Decline" });
  const page = await newPage(browser, stack);
  await openAndVerify(page, link);
  await openConsent(page);
  await page.getByRole("link", { name: "I do not want to sign this form" }).click();
  await page.waitForURL(/\/consent\/\d+\/decline$/);
  assert.equal((await page.locator("h1").innerText()).trim(), "Decline this form?");
  assert.match(await mainText(page), /is not signed and your clinic is told/);
  await page.getByLabel(/Anything you want your clinic to know/)
    .fill("I want to talk it over with my doctor first.");
  await screen(page, "decline-01-confirm");
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");

  const done = await press(page, "Decline this form");
  assert.equal(done.status(), 200, await mainText(page));
  assert.match(new URL(page.url()).pathname, /^\/consent\/\d+\/declined$/);
  assert.equal((await page.locator("h1").innerText()).trim(), "You declined this form");
  assert.match(await page.getByRole("status").innerText(), /was not signed\. Your clinic has been told\./);
  await screen(page, "decline-02-done");
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_REJECTED");
  assert.equal((await stack.checkConsent(link.patient)).valid ?? false, false);

  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await page.waitForURL(/\/tasks$/);
  assert.match(await mainText(page), /Declined: .* — nothing was signed/);
  assert.equal(await page.getByRole("link", { name: /^Read and sign:/ }).count(), 0);
});

test("a patient withdraws a signed consent from a later visit", async () => {
  const link = await stack.newConsentLink({ name: "Wren Withdraw" });
  const first = await newPage(browser, stack);
  await openAndVerify(first, link);
  await signConsent(first, link.name);
  assert.equal((await stack.checkConsent(link.patient)).valid, true);
  await first.close();

  const later = await stack.newTaskLink(link);
  const page = await newPage(browser, stack);
  await openAndVerify(page, later);
  const tasks = await mainText(page);
  assert.match(tasks, /Your signed forms/);
  await screen(page, "withdraw-01-tasks");
  await page.getByRole("link", { name: "Withdraw my consent" }).click();
  await page.waitForURL(/\/consent\/\d+\/withdraw$/);
  assert.equal((await page.locator("h1").innerText()).trim(), "Withdraw your consent?");
  assert.match(await mainText(page), /It takes effect at once/);
  await page.getByLabel(/Why, if you want to tell your clinic/).fill("Changed my mind.");
  await screen(page, "withdraw-02-confirm");
  assert.equal((await stack.checkConsent(link.patient)).valid, true);

  const done = await press(page, "Withdraw my consent");
  assert.equal(done.status(), 200, await mainText(page));
  assert.equal((await page.locator("h1").innerText()).trim(), "Your consent is withdrawn");
  await screen(page, "withdraw-03-done");
  const check = await stack.checkConsent(link.patient);
  assert.equal(check.valid ?? false, false);
  assert.equal(check.reason, "CONSENT_CHECK_REASON_WITHDRAWN");
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_WITHDRAWN");

  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await page.waitForURL(/\/tasks$/);
  assert.match(await mainText(page), /Withdrawn: /);
  assert.equal(await page.getByRole("link", { name: "Withdraw my consent" }).count(), 0);
});
