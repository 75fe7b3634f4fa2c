// Negative: a form POST without its CSRF token (the hidden field removed from
// the page, or its value changed) is refused with a clear page and nothing
// is signed; the untouched form then signs (so the refusal was the token's).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { newPage, openBrowser, screen } from "../lib/browser.mjs";
import {
  clickSign, expectRefusal, fillConsent, openConsent, openLink, submitDob,
} from "../lib/portal.mjs";

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

const refused = {
  status: 403,
  title: "This form could not be accepted",
  says: /security token is missing or wrong\)\. Nothing was signed or saved/,
};

test("a POST without its CSRF token is refused and nothing is signed", async () => {
  const link = await stack.newConsentLink();
  const page = await newPage(browser, stack);

  // On /verify: no token, no verification (and no try counted against it).
  await openLink(page, link);
  await page.locator('form[action="/verify"] input[name="csrf"]').evaluate((el) => el.remove());
  await expectRefusal(page, await submitDob(page, link.dob), refused);
  await page.goto("/verify");
  await submitDob(page, link.dob);
  assert.equal(new URL(page.url()).pathname, "/tasks");

  // On signing: the hidden field removed.
  await openConsent(page);
  await fillConsent(page, link.name);
  const sign = page.locator('form[action$="/sign"] input[name="csrf"]');
  assert.equal(await sign.count(), 1);
  await sign.evaluate((el) => el.remove());
  await expectRefusal(page, await clickSign(page), refused);
  await screen(page, "refused-05-csrf-missing");
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");
  assert.equal((await stack.checkConsent(link.patient)).reason, "CONSENT_CHECK_REASON_PENDING_SIGNATURE");

  // A changed token is refused too.
  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await openConsent(page);
  await fillConsent(page, link.name);
  await page.locator('form[action$="/sign"] input[name="csrf"]')
    .evaluate((el) => { el.value = el.value.replace(/^./, (c) => (c === "A" ? "B" : "A")); });
  await expectRefusal(page, await clickSign(page), refused);
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");

  // The same form, untouched, signs.
  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await openConsent(page);
  await fillConsent(page, link.name);
  const ok = await clickSign(page);
  assert.equal(ok.status(), 200);
  assert.match(new URL(page.url()).pathname, /^\/done\/\d+$/);
  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_ACTIVE");
});
