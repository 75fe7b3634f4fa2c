// run.sh's one stack and one browser for all flows:
//   node lib/serve.mjs STACK_JSON
// starts the services (stack.mjs) and a headless chromium server
// (browser.mjs), writes {..stack, browserWs} to STACK_JSON, and stops both
// on SIGTERM or SIGINT. Flows attach with startStack() and openBrowser().
import { rename, writeFile } from "node:fs/promises";
import { launchBrowserServer } from "./browser.mjs";
import { serveStack } from "./stack.mjs";

const file = process.argv[2];
let browser;
try {
  await serveStack(async (desc) => {
    browser = await launchBrowserServer();
    await writeFile(`${file}.tmp`, JSON.stringify({ ...desc, browserWs: browser.wsEndpoint() }));
    await rename(`${file}.tmp`, file);  // run.sh waits for the whole file
  });
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser?.close();
}
