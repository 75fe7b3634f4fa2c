// Negative: the portal refuses to sign a form that the browser's own checks
// would have stopped (an unticked acknowledgement with its `required`
// removed from the page; a one-letter name) with a clear "Not signed" page,
// and nothing is signed until the form is complete.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { newPage, openBrowser, screen } from "../lib/browser.mjs";
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

test("an incomplete form is refused and nothing is signed", async () => {
  const link = await stack.newConsentLink({ name: "Noor Notyet" });
  const page = await newPage(browser, stack);
  await openAndVerify(page, link);

  // The browser stops an unticked required box by itself.
  await openConsent(page);
  await fillConsent(page, link.name);
  await page.locator("#ack-3").uncheck();
  await page.getByRole("button", { name: "I agree and sign" }).click();
  assert.match(new URL(page.url()).pathname, /^\/consent\/\d+$/);
  assert.equal(await page.locator("#ack-3").evaluate((el) => el.validity.valueMissing), true);

  // Without the browser's check, the portal refuses.
  await page.locator("#ack-3").evaluate((el) => el.removeAttribute("required"));
  await expectRefusal(page, await clickSign(page), {
    status: 400,
    title: "Not signed",
    says: /Please tick every statement before signing\. Nothing was signed/,
  });
  await screen(page, "refused-07-not-signed");
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");

  // A one-letter name.
  await page.getByRole("link", { name: "Back to the form" }).click();
  await page.waitForURL(/\/consent\/\d+$/);
  await fillConsent(page, "N");
  await expectRefusal(page, await clickSign(page), {
    status: 400,
    title: "Not signed",
    says: /Please type your full name/,
  });
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");

  // Complete, it signs.
  await page.getByRole("link", { name: "Back to the form" }).click();
  await page.waitForURL(/\/consent\/\d+$/);
  await fillConsent(page, link.name);
  assert.equal((await clickSign(page)).status(), 200);
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_ACTIVE");
});
