// Negative: a link works once. Opening it again (another device, after a
// successful verification) and verifying gives the clear "already used"
// page, and nothing is signed.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { newPage, openBrowser, screen } from "../lib/browser.mjs";
import { expectRefusal, openAndVerify, openLink, submitDob } from "../lib/portal.mjs";

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

test("a reused link is refused with the already-used page", async () => {
  const link = await stack.newConsentLink();
  const first = await newPage(browser, stack);
  await openAndVerify(first, link);

  const second = await newPage(browser, stack);
  await openLink(second, link);
  const again = await submitDob(second, link.dob);
  await expectRefusal(second, again, {
    status: 409,
    title: "This link was already used",
    says: /Each link works once\. Nothing was signed/,
  });
  await screen(second, "refused-01-link-already-used");
  // The second browser has no session: its cookie was cleared.
  assert.deepEqual(await second.context().cookies(), []);
  const tasks = await second.goto("/tasks");
  assert.equal(tasks.status(), 401);

  assert.equal(await stack.consentState(link.consent), "CONSENT_STATE_PENDING");
  assert.equal((await stack.checkConsent(link.patient)).valid ?? false, false);
});
