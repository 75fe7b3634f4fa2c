// Flow: a patient with an infusion in 2 h 30 min (inside the portal's 7-day
// window, past the template's 6 h solids cut-off, so the day-of checklist
// is on the form) signs the consent, opens the instructions from the task
// list, confirms the discharge statement and answers the checklist (last
// food and clear liquid, escort name and phone, medicines, "None of
// these"), and gets the "Thank you" page. Then, with the CLI as the EHR:
// `careseal sessions readiness` says READY on the patient's attestation.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack, TIME_ZONE } from "../lib/stack.mjs";
import { mainText, newPage, openBrowser, screen } from "../lib/browser.mjs";
import { localInput, openAndVerify, signConsent } from "../lib/portal.mjs";

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

test("a patient acknowledges the instructions and the session turns READY", async () => {
  const link = await stack.newConsentLink({ dob: "1979-06-14", name: "Robin Ready" });
  // A whole minute, so the form's minute-precision times are exact.
  const start = new Date((Math.floor(Date.now() / 60000) + 150) * 60000);
  const session = await stack.scheduleSession(link.patient, start);
  const notReady = await stack.readiness(session.name);
  assert.equal(notReady.state, "READINESS_STATE_NOT_READY");

  const page = await newPage(browser, stack);
  await openAndVerify(page, link);
  await signConsent(page, link.name);
  assert.equal((await stack.checkConsent(link.patient)).valid, true);
  const tasks = await mainText(page);
  assert.match(tasks, /Before your infusion/);
  assert.match(tasks, /Before your infusion on .* — to read and confirm/);
  await screen(page, "instructions-01-tasks");

  await page.getByRole("link", { name: /^Before your infusion on / }).click();
  await page.waitForURL(/\/instructions\/\d+$/);
  assert.equal((await page.locator("h1").innerText()).trim(), "Before your ketamine infusion");
  const text = await mainText(page);
  for (const shown of [/Please arrive by:/, /Where: Suite 2/, /No solid food after/,
    /Clear liquids .* are fine until/, /An adult must take you home/,
    /Benzodiazepines: take or hold/, /photo ID/, /Wear comfortable clothes/,
    /Today's checklist/]) {
    assert.match(text, shown);
  }
  await page.getByLabel("No driving, machinery or legal decisions for 24 hours.").check();
  await page.getByLabel("When did you last eat solid food?")
    .fill(localInput(new Date(start - 8 * 3600e3), TIME_ZONE));
  await page.getByLabel("When did you last drink a clear liquid?")
    .fill(localInput(new Date(start - 3 * 3600e3), TIME_ZONE));
  await page.getByLabel("Their name").fill("Sam Escort");
  await page.getByLabel("Their phone number").fill("(555) 555-0123");
  await page.getByRole("radio", { name: "Yes", exact: true }).check();
  await page.getByLabel("None of these").check();
  await screen(page, "instructions-02-form");

  const [sent] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole("button", { name: "Send my answers" }).click(),
  ]);
  assert.equal(sent.status(), 200, await mainText(page));
  assert.match(new URL(page.url()).pathname, /^\/instructions\/\d+\/done$/);
  assert.equal((await page.locator("h1").innerText()).trim(), "Thank you");
  assert.match(await page.getByRole("status").innerText(), /Your answers are with your care team\./);
  await screen(page, "instructions-03-done");

  // The EHR asks: READY, on the patient's attestation.
  const ready = await stack.readiness(session.name);
  assert.equal(ready.state, "READINESS_STATE_READY", JSON.stringify(ready));
  assert.ok(ready.attestation, "READY names the attestation");
  assert.deepEqual(ready.issues ?? [], []);

  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await page.waitForURL(/\/tasks$/);
  assert.match(await mainText(page), /Before your infusion on .* — done, thank you/);
  await screen(page, "instructions-04-tasks-done");
});
