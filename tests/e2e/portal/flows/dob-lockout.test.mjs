// Negative: five wrong dates of birth lock the link; the right one is
// refused after that, and nothing is signed.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { newPage, openBrowser, screen } from "../lib/browser.mjs";
import { expectRefusal, openLink, submitDob } from "../lib/portal.mjs";

let stack;
let browser;
before(async () => {
  // Six redemptions: its own stack, not the shared one's budget (stack.mjs).
  stack = await startStack({ own: true });
  browser = await openBrowser();
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

test("five wrong dates of birth lock the link", async () => {
  const link = await stack.newConsentLink({ dob: "1984-02-29" });
  const page = await newPage(browser, stack);
  await openLink(page, link);
  for (let i = 1; i <= 4; i++) {
    const wrong = await submitDob(page, "1990-01-01");
    assert.equal(wrong.status(), 403, `try ${i}`);
    assert.equal(new URL(page.url()).pathname, "/verify");
    const alert = await page.getByRole("alert").filter({ hasText: "does not match" }).innerText();
    // "N attempts remaining" (the service's words) or "N tries left before
    // this link locks" (the portal's own, from the ErrorInfo count).
    const left = `${5 - i} (attempts? remaining|(try|tries) left before this link locks)`;
    assert.match(alert, new RegExp(left), `try ${i}: ${alert}`);
    if (i === 1) await screen(page, "refused-02-dob-mismatch");
  }
  // The fifth wrong try locks the link.
  const fifth = await submitDob(page, "1990-01-01");
  assert.equal(fifth.status(), 403);
  // Said on the form ("... locked") or as the "This link is locked" page.
  assert.match(await page.locator("main").innerText(), /locked/);
  await screen(page, "refused-03-dob-fifth-try");

  // The right date of birth, in a new browser, is refused: locked.
  const retry = await newPage(browser, stack);
  await openLink(retry, link);
  const right = await submitDob(retry, link.dob);
  await expectRefusal(retry, right, {
    status: 403,
    title: "This link is locked",
    says: /too many tries/,
  });
  await screen(retry, "refused-04-link-locked");
  assert.equal((await retry.goto("/tasks")).status(), 401);

  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");
  assert.equal((await stack.checkConsent(link.patient)).valid ?? false, false);
});
