// Debian's chromium (/usr/bin/chromium, headless) driven by playwright-core;
// Playwright's own browsers are never downloaded or used.
//
//   const browser = await openBrowser();
//   const page = await newPage(browser, stack);      // 360 x 800, en-US
//   await page.goto(link.path);
//   await screen(page, "consent-01-verify");         // checks + screenshots
//
// screen() checks what a patient on a phone needs on every page (see
// auditPage) and writes <name>-360.png and <name>-1280.png (full page) into
// CARESEAL_E2E_SCREENSHOTS (run.sh sets it; docs/screenshots/portal with
// scripts/portal-screenshots.sh).
import assert from "node:assert/strict";
import { readFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CARESEAL_CHROMIUM ?? "/usr/bin/chromium";
export const WIDTHS = [360, 1280];
const HEIGHT = 800;

function launchOptions() {
  const args = ["--disable-dev-shm-usage", "--font-render-hinting=none"];
  if (process.getuid?.() === 0) args.push("--no-sandbox");
  return { executablePath: CHROMIUM, headless: true, args };
}

// The browser run.sh started (serve.mjs), or a new one of this process's
// own. close() closes this process's contexts (and its own browser).
export async function openBrowser() {
  const shared = process.env.CARESEAL_E2E_STACK;
  if (shared) {
    const { browserWs } = JSON.parse(await readFile(shared, "utf8"));
    if (browserWs) return chromium.connect(browserWs);
  }
  return chromium.launch(launchOptions());
}

export function launchBrowserServer() {
  return chromium.launchServer(launchOptions());
}

// A fresh browser context (its own cookies) at phone size.
export async function newContext(browser, stack, options = {}) {
  return browser.newContext({
    baseURL: stack.baseURL,
    // Only the loopback test server's development certificate is involved.
    ignoreHTTPSErrors: true,
    locale: "en-US",
    timezoneId: "America/Chicago",
    viewport: { width: WIDTHS[0], height: HEIGHT },
    acceptDownloads: true,
    ...options,
  });
}

export async function newPage(browser, stack, options = {}) {
  const context = await newContext(browser, stack, options);
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  return page;
}

// What every portal page must have, checked in the browser: one h1 inside
// main, a language, a title, a label for every visible form control, a name
// for every button and link, no horizontal scrolling at the current width,
// touch targets of at least 44 px (24 px for checkboxes) and WCAG AA text
// contrast (4.5:1, 3:1 for large text). Returns the faults found.
export async function auditPage(page) {
  return page.evaluate(() => {
    const faults = [];
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
    };
    const describe = (el) =>
      `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}` +
      ` "${(el.textContent || el.value || "").trim().slice(0, 40)}"`;
    if (!document.documentElement.lang) faults.push("html has no lang");
    if (!document.title.trim()) faults.push("no title");
    const main = document.querySelector("main");
    if (!main) faults.push("no main");
    const h1 = document.querySelectorAll("h1");
    if (h1.length !== 1 || !main?.contains(h1[0])) faults.push(`${h1.length} h1 (want 1 in main)`);
    for (const el of document.querySelectorAll("input, select, textarea")) {
      if (el.type === "hidden" || !visible(el)) continue;
      if (!el.labels?.length || !el.labels[0].textContent.trim()) faults.push(`no label: ${describe(el)}`);
    }
    for (const el of document.querySelectorAll("button, a[href]")) {
      if (!visible(el)) continue;
      if (!(el.textContent || el.getAttribute("aria-label") || "").trim()) faults.push(`no name: ${describe(el)}`);
      const r = el.getBoundingClientRect();
      if (el.tagName === "BUTTON" && (r.height < 44 || r.width < 44)) {
        faults.push(`button smaller than 44 px: ${describe(el)} ${r.width}x${r.height}`);
      }
    }
    for (const el of document.querySelectorAll("input[type=checkbox], input[type=radio]")) {
      const r = el.getBoundingClientRect();
      if (visible(el) && (r.height < 24 || r.width < 24)) faults.push(`small ${el.type}: ${describe(el)}`);
    }
    if (document.documentElement.scrollWidth > window.innerWidth) {
      faults.push(`horizontal scroll: page ${document.documentElement.scrollWidth} px wide in ${window.innerWidth} px`);
    }
    for (const el of document.querySelectorAll("body *")) {
      if (!visible(el) || el.closest("[hidden]")) continue;
      const rect = el.getBoundingClientRect();
      if (rect.right > window.innerWidth + 1) {
        faults.push(`overflows the viewport: ${describe(el)} (right ${Math.round(rect.right)} px)`);
      }
    }
    // Contrast of every element that has its own text.
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    for (const el of document.querySelectorAll("body *")) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || !visible(el)) continue;
      const s = getComputedStyle(el);
      const fg = rgb(s.color).slice(0, 3);
      const bg = background(el);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const px = parseFloat(s.fontSize);
      const large = px >= 24 || (px >= 18.66 && Number(s.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) faults.push(`contrast ${ratio.toFixed(2)}: ${describe(el)}`);
    }
    return faults;
  });
}

// Checks the page at both widths and writes its screenshots (the whole
// page, or with {fullPage: false} what shows in the 800 px high window, for
// a state at the top of a long page).
export async function screen(page, name, { fullPage = true } = {}) {
  const dir = process.env.CARESEAL_E2E_SCREENSHOTS;
  if (dir) await mkdir(dir, { recursive: true });
  const before = page.viewportSize();
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: HEIGHT });
    const faults = await auditPage(page);
    assert.deepEqual(faults, [], `${name} at ${width} px`);
    if (dir) await page.screenshot({ path: join(dir, `${name}-${width}.png`), fullPage });
  }
  await page.setViewportSize(before);
}

// The visible text of the page's main region.
export async function mainText(page) {
  return (await page.locator("main").innerText()).replace(/\s+/g, " ");
}
