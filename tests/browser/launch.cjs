// Debian's Chromium, headless, through playwright-core (from NODE_DIR), with everything
// that would call home turned off: this machine's network is closed.
const path = require("path");
const { chromium } = require(path.join(process.env.NODE_DIR, "node_modules", "playwright-core"));

module.exports.launch = () =>
  chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
