// Drives Debian's Chromium (headless, through playwright-core) against `driftless serve`:
// the example site renders, an SPA deep link loads through the fallback, the edge's
// security headers reach the browser, and a screenshot is saved.
// Usage: NODE_DIR=<dir with node_modules/playwright-core> node serve-example.cjs BASE_URL SHOT.png
// Prints one JSON line of what the browser saw; the Rust test judges it. Exits 1 on error.
const { launch } = require("./launch.cjs");

const [base, shot] = process.argv.slice(2);

(async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

    const home = await page.goto(`${base}/`, { waitUntil: "load" });
    const seen = {
      status: home.status(),
      headers: await home.allHeaders(),
      title: await page.title(),
      h1: await page.textContent("h1"),
      // The stylesheet applied (its border rule) and the module script ran (the click).
      border: await page.evaluate(
        () => getComputedStyle(document.querySelector("#stripe-checkout")).borderTopStyle,
      ),
    };
    await page.click("#stripe-checkout");
    seen.clicked = await page.textContent("#stripe-checkout");
    await page.screenshot({ path: shot, fullPage: true });

    const deep = await page.goto(`${base}/account/orders`, { waitUntil: "load" });
    await page.waitForFunction(
      () => (document.querySelector("#route")?.textContent ?? "").includes("/account/orders"),
      null,
      { timeout: 5000 },
    );
    seen.deepStatus = deep.status();
    seen.route = await page.textContent("#route");
    seen.errors = errors;
    console.log(JSON.stringify(seen));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
