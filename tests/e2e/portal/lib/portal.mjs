// Page steps shared by the flows: what a patient does on the portal.
import assert from "node:assert/strict";
import { mainText } from "./browser.mjs";

// Opens a link from the clinic: the portal moves its tokens into the session
// and redirects to /verify (the tokens leave the address bar).
export async function openLink(page, link) {
  await page.goto(link.path);
  assert.equal(new URL(page.url()).pathname, "/verify");
  assert.doesNotMatch(page.url(), new RegExp(link.linkToken));
}

// Submits the date of birth (YYYY-MM-DD) on /verify; returns the response
// of the page that follows.
export async function submitDob(page, dob) {
  await page.getByLabel("Date of birth").fill(dob);
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole("button", { name: "Continue" }).click(),
  ]);
  return response;
}

export async function openAndVerify(page, link) {
  await openLink(page, link);
  await submitDob(page, link.dob);
  assert.equal(new URL(page.url()).pathname, "/tasks");
}

// On /tasks: opens the consent form.
export async function openConsent(page) {
  await page.getByRole("link", { name: /^Read and sign:/ }).click();
  await page.waitForURL(/\/consent\/\d+$/);
}

// Ticks every acknowledgement and types the name (does not sign).
export async function fillConsent(page, name) {
  const boxes = page.getByRole("checkbox");
  const n = await boxes.count();
  assert.ok(n > 0, "no acknowledgement checkboxes");
  for (let i = 0; i < n; i++) await boxes.nth(i).check();
  await page.getByLabel("Type your full name").fill(name);
  return n;
}

export async function clickSign(page) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole("button", { name: "I agree and sign" }).click(),
  ]);
  return response;
}

// Asserts a refusal page: its status, h1 and a phrase of its message.
export async function expectRefusal(page, response, { status, title, says }) {
  assert.equal(response.status(), status, await mainText(page));
  assert.equal((await page.locator("h1").innerText()).trim(), title);
  if (says) assert.match(await mainText(page), says);
}

// On /tasks: signs the consent whose link was opened (every
// acknowledgement, the typed name, "I agree and sign"), then back to /tasks.
export async function signConsent(page, name) {
  await openConsent(page);
  await fillConsent(page, name);
  const signed = await clickSign(page);
  assert.equal(signed.status(), 200);
  await page.getByRole("link", { name: "Back to your tasks" }).click();
  await page.waitForURL(/\/tasks$/);
}

// A time as a datetime-local value ("2026-11-24T07:30") in `timeZone`.
export function localInput(date, timeZone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(date).map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}
