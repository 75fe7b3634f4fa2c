// Flow: the clinician sends a PHQ-9 check-in (`careseal followup send`);
// the patient opens a task-list link, starts the check-in and answers one
// question per screen ("PHQ-9 · Question k of 10"). Item 9 answered "More
// than half the days" leads straight to the crisis page: Call 988, Text
// 988, Call 911 at the top of a phone screen, and "Your care team has been
// told". Then, with the CLI as the clinician: the urgent PHQ9_ITEM9
// escalation is in `careseal followup escalations`, and the response is
// stored.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startStack } from "../lib/stack.mjs";
import { auditPage, mainText, newPage, openBrowser, screen } from "../lib/browser.mjs";
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

async function next(page, k, base) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole("button", { name: "Next" }).click(),
  ]);
  assert.equal(response.status(), 200, `question ${k + 1}: ${await mainText(page)}`);
  return response;
}

test("PHQ-9 item 9 > 0 shows 988 and 911 at once and escalates", async () => {
  const p = await stack.newPatient({ dob: "1968-09-30", name: "Casey Check" });
  const checkIn = await stack.sendCheckIn(p.patient, ["phq-9"],
    "Please answer before your next infusion.");
  assert.equal(checkIn.state, "CHECK_IN_STATE_SENT");
  const link = await stack.newTaskLink(p);

  const page = await newPage(browser, stack);
  await openAndVerify(page, link);
  assert.match(await mainText(page), /Check-ins Answer: PHQ-9/);
  await screen(page, "checkin-01-tasks");

  await page.getByRole("link", { name: /^Answer: PHQ-9/ }).click();
  await page.waitForURL(/\/checkin\/\d+$/);
  const base = new URL(page.url()).pathname;
  assert.equal((await page.locator("h1").innerText()).trim(), "Check-in");
  assert.match(await mainText(page), /Please answer before your next infusion\./);
  await screen(page, "checkin-02-start");

  await page.getByRole("link", { name: "Start" }).click();
  await page.waitForURL((u) => u.pathname === `${base}/q/0`);
  // Items 1-8, one per screen: "Several days" (1 point each).
  for (let k = 0; k < 8; k++) {
    assert.equal(new URL(page.url()).pathname, `${base}/q/${k}`);
    assert.equal(await page.locator(".progress").innerText(), `PHQ-9 · Question ${k + 1} of 10`);
    assert.equal(await page.locator("h1").count(), 1);
    assert.equal(await page.getByRole("radio").count(), 4, `question ${k + 1}`);
    if (k === 0) assert.match(await mainText(page), /Little interest or pleasure/);
    await page.getByRole("radio", { name: "Several days" }).check();
    if (k === 0) {
      await screen(page, "checkin-03-question");
    } else {
      assert.deepEqual(await auditPage(page), [], `question ${k + 1}`);
    }
    await next(page, k, base);
  }
  // Nothing is sent before item 9.
  assert.deepEqual(await stack.escalations(p.patient), []);

  assert.equal(new URL(page.url()).pathname, `${base}/q/8`);
  assert.equal(await page.locator(".progress").innerText(), "PHQ-9 · Question 9 of 10");
  assert.match(await page.locator("h1").innerText(), /better off dead or of hurting yourself/);
  await page.getByRole("radio", { name: "More than half the days" }).check();
  await screen(page, "checkin-04-item9");
  await next(page, 8, base);

  // The very next screen is the crisis page.
  assert.equal(new URL(page.url()).pathname, `${base}/crisis`);
  assert.equal((await page.locator("h1").innerText()).trim(),
    "You are not alone. Help is available now.");
  const call988 = page.getByRole("link", { name: "Call 988" });
  assert.equal(await call988.getAttribute("href"), "tel:988");
  assert.equal(await page.getByRole("link", { name: "Text 988" }).getAttribute("href"), "sms:988");
  assert.equal(await page.getByRole("link", { name: "Call 911" }).getAttribute("href"), "tel:911");
  assert.match(await mainText(page), /988 Suicide & Crisis Lifeline/);
  assert.match(await page.getByRole("status").innerText(), /Your care team has been told/);
  // 988 is on the first phone screen, without scrolling.
  const box = await call988.boundingBox();
  assert.ok(box && box.y + box.height <= 800, `Call 988 at ${JSON.stringify(box)}`);
  await screen(page, "checkin-05-crisis");

  // The clinician's queue has the urgent escalation already.
  const queue = await stack.escalations(p.patient);
  assert.equal(queue.length, 1, JSON.stringify(queue));
  assert.equal(queue[0].trigger, "ESCALATION_TRIGGER_PHQ9_ITEM9");
  assert.equal(queue[0].priority, "ESCALATION_PRIORITY_URGENT");
  assert.ok(queue[0].name.startsWith(`${p.patient}/escalations/`), queue[0].name);
  const responses = await stack.responses(p.patient);
  assert.equal(responses.length, 1);
  assert.equal(responses[0].score, 10);  // 8 x 1 + 2
  assert.equal(responses[0].check_in, checkIn.name);

  // Continue: the optional last question is not asked; the answers are sent.
  await page.getByRole("link", { name: "Continue" }).click();
  await page.waitForURL((u) => u.pathname === `${base}/done`);
  assert.equal((await page.locator("h1").innerText()).trim(), "Thank you — your answers were sent");
  assert.match(await mainText(page), /Your care team was alerted and will contact you/);
  await screen(page, "checkin-06-done");
  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await page.waitForURL(/\/tasks$/);
  assert.match(await mainText(page), /Sent: PHQ-9/);
});
