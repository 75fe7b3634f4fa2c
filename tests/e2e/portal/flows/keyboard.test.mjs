// Keyboard only: a patient verifies, opens the consent, ticks every
// acknowledgement, types the name, signs and downloads the receipt with
// Tab, Space, Enter and typing; every stop shows a visible focus ring.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { newPage, openBrowser, screen } from "../lib/browser.mjs";
import { openLink } from "../lib/portal.mjs";

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

// What has the focus: tag, id, type, text; and whether a focus ring shows.
const focused = (page) =>
  page.evaluate(async () => {
    // Let the focus settle (a date field moves it into its first segment).
    await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
    const el = document.activeElement;
    const s = getComputedStyle(el);
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      type: el.type ?? "",
      text: (el.textContent || "").trim(),
      ring: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2,
      // Chromium's date field has a calendar button of its own after the
      // year: with it focused, the field is the active element but does not
      // match :focus, and the browser draws that button's focus itself.
      inner: el.type === "date" && !el.matches(":focus"),
    };
  });

// Presses Tab until `want(focus)` holds (at most 40 stops); asserts that
// every stop on the way shows the portal's focus ring.
async function tabTo(page, want, what) {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    const f = await focused(page);
    assert.ok(f.ring || f.inner, `no visible focus on ${JSON.stringify(f)}`);
    if (want(f)) return f;
  }
  assert.fail(`Tab never reached ${what}`);
}

test("the consent can be completed with the keyboard only", async () => {
  // The two-token link form (/l/<link token>/<signing token>, a link the
  // EHR made itself); the other flows use the one-token consent link.
  const link = await stack.newConsentLink({ dob: "1975-11-03", name: "Kim Keys", twoToken: true });
  const page = await newPage(browser, stack);
  await openLink(page, link);

  // The first stop is the skip link.
  await page.keyboard.press("Tab");
  const first = await focused(page);
  assert.equal(first.text, "Skip to content");
  assert.ok(first.ring);

  await tabTo(page, (f) => f.id === "dob", "the date of birth");
  await page.keyboard.type("11031975");  // mm dd yyyy segments (en-US)
  assert.equal(await page.locator("#dob").inputValue(), link.dob);
  await tabTo(page, (f) => f.text === "Continue", "Continue");
  await Promise.all([page.waitForURL(/\/tasks$/), page.keyboard.press("Enter")]);

  await tabTo(page, (f) => f.tag === "a" && f.text.startsWith("Read and sign"), "the consent link");
  await Promise.all([page.waitForURL(/\/consent\/\d+$/), page.keyboard.press("Enter")]);

  const boxes = await page.getByRole("checkbox").count();
  assert.equal(boxes, 8);
  for (let i = 0; i < boxes; i++) {
    await tabTo(page, (f) => f.id === `ack-${i}`, `acknowledgement ${i}`);
    await page.keyboard.press("Space");
    assert.equal(await page.locator(`#ack-${i}`).isChecked(), true);
    if (i === 0) await screen(page, "consent-09-keyboard-focus", { fullPage: false });
  }
  await tabTo(page, (f) => f.id === "printed_name", "the name");
  await page.keyboard.type(link.name);
  await tabTo(page, (f) => f.text === "I agree and sign", "I agree and sign");
  await Promise.all([page.waitForURL(/\/done\/\d+$/), page.keyboard.press("Enter")]);

  await tabTo(page, (f) => f.text === "Download your signed receipt", "the receipt");
  const [download] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Enter")]);
  assert.equal(download.suggestedFilename(), "consent-receipt.json");

  const check = await stack.checkConsent(link.patient);
  assert.equal(check.valid, true, JSON.stringify(check));
});
