// Flow: the clinician writes to a patient (`careseal messages send`); the
// patient signs in from a task-list link, sees the unread badges (task
// list, header, thread list), opens the conversation and replies; the
// clinician's `careseal messages list` has the reply. Then, with the
// conversation still open, the clinician marks the reply read and answers:
// the new message (and "read" on the reply) appears without a reload
// (portal.js polls /api/inbox every 5 s).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { mainText, newPage, openBrowser, screen } from "../lib/browser.mjs";
import { openAndVerify } from "../lib/portal.mjs";

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

test("patient and clinician exchange messages, with live updates", async () => {
  const p = await stack.newPatient({ dob: "1990-12-01", name: "Mo Message" });
  const first = await stack.sendMessage({
    patient: p.patient,
    subject: "About your next infusion",
    text: "Hello Mo,\nhow are you feeling today?",
  });
  const thread = first.name.replace(/\/messages\/[^/]+$/, "");
  const link = await stack.newTaskLink(p);

  const page = await newPage(browser, stack);
  await openAndVerify(page, link);
  assert.match(await mainText(page), /You have 1 unread message/);
  // The header badge (filled by portal.js from /api/inbox).
  const headerBadge = page.locator("[data-unread-total]");
  await headerBadge.waitFor({ state: "visible" });
  assert.equal((await headerBadge.innerText()).trim(), "1 unread");
  await screen(page, "messages-01-tasks-unread");

  await page.getByRole("navigation", { name: "Portal" }).getByRole("link", { name: /^Messages/ }).click();
  await page.waitForURL(/\/messages$/);
  const item = page.locator("li[data-thread-index]").filter({ hasText: "About your next infusion" });
  assert.equal((await item.locator(".badge").innerText()).trim(), "1 unread");
  assert.ok(await page.getByRole("link", { name: "Write to your care team" }).isVisible());
  await screen(page, "messages-02-threads");

  await item.getByRole("link", { name: "About your next infusion" }).click();
  await page.waitForURL(/\/messages\/\d+$/);
  const threadPath = new URL(page.url()).pathname;
  assert.equal((await page.locator("h1").innerText()).trim(), "About your next infusion");
  const list = page.locator("#messages");
  assert.match(await list.innerText(), /Your care team, .*\n*Hello Mo,\s*how are you feeling today\?/);
  // Read once shown: the badge goes away on the next poll.
  await headerBadge.waitFor({ state: "hidden", timeout: 15000 });

  await page.getByLabel("Your reply").fill("Feeling fine, thank you.");
  const [replied] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole("button", { name: "Send reply" }).click(),
  ]);
  assert.equal(replied.status(), 200);
  assert.equal(new URL(page.url()).pathname, threadPath);
  const mine = list.locator("li.from-you");
  assert.equal(await mine.count(), 1);
  assert.match(await mine.innerText(), /^You, [\s\S]*Feeling fine, thank you\./);
  await screen(page, "messages-03-replied");

  // The clinician sees the reply (newest first).
  let messages = await stack.messages(thread);
  assert.equal(messages.length, 2);
  assert.equal(messages[0].text, "Feeling fine, thank you.");
  assert.equal(messages[0].sender.role, "ROLE_PATIENT");

  // Live: the page stays open (no reload) while the clinician reads the
  // reply and answers.
  await page.evaluate(() => { window.__sameDocument = true; });
  await stack.cli("clinician-demo", "messages", "read", messages[0].name);
  await stack.sendMessage({ thread, text: "Good to hear. See you Thursday." });
  const answer = list.locator("li.from-team").filter({ hasText: "See you Thursday." });
  await answer.waitFor({ state: "visible", timeout: 15000 });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  assert.match(await mine.innerText(), / · read/);
  // Shown is read: the header badge clears on a following poll.
  await headerBadge.waitFor({ state: "hidden", timeout: 15000 });
  await screen(page, "messages-04-live-update");

  messages = await stack.messages(thread);
  assert.equal(messages.length, 3);
  assert.equal(messages[0].text, "Good to hear. See you Thursday.");
});
