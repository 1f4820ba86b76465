import { defineConfig } from "@playwright/test";

// Debian's chromium (apt), never a downloaded browser; the stack comes from
// tests/browser/stack.py (make console-test) through VIPAY_* variables.
export default defineConfig({
  testDir: "tests",
  timeout: 60_000,
  workers: 1,
  reporter: [["list"]],
  use: {
    baseURL: process.env.VIPAY_CONSOLE,
    launchOptions: { executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] },
    screenshot: "only-on-failure",
  },
});
