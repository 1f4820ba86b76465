// The reference renders OFFLINE (make sdk-test): index.html is loaded from file:// in headless
// Chromium (Debian's /usr/bin/chromium) with the network disabled, and the 004 operation's text
// must appear once its section is opened. Any request that leaves file:// fails the check.
import { chromium } from "playwright-core";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const page_ = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "index.html")).href;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
                                        args: ["--no-sandbox", "--proxy-server=http://127.0.0.1:9"] });
let failed = 0;
try {
  const context = await browser.newContext({ offline: true });
  const outside = [];
  await context.route(/^(?!file:|data:|blob:|about:)/, (route) => { outside.push(route.request().url()); route.abort(); });
  const page = await context.newPage();
  await page.goto(page_, { waitUntil: "load" });
  await page.getByText("004 merchant", { exact: true }).first().click({ timeout: 20000 });
  const op = page.getByText("Buys a membership for", { exact: false }).first();
  await op.waitFor({ state: "visible", timeout: 20000 });
  await page.getByText("Worked example", { exact: false }).first().waitFor({ timeout: 5000 });
  const images = outside.filter((u) => !/\.(svg|png|ico|woff2?)(\?|$)/.test(u));
  if (images.length) {
    console.error("the page asked the network for:", images);
    failed = 1;
  } else {
    console.log(`reference renders offline: the 004 operation is shown (${outside.length} icon requests refused)`);
  }
} catch (err) {
  console.error("the reference does not render offline:", err.message);
  failed = 1;
} finally {
  await browser.close();
}
process.exit(failed);
