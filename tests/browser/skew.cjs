// Skew protection in a real browser: a page of release 1 stays open while newer releases
// go live, then loads its lazy chunks. Driven step by step by the Rust test over stdin.
// Usage: NODE_DIR=<dir with node_modules/playwright-core> node skew.cjs BASE_URL
// Prints "loaded" once the page is up; then for each line "click ID" on stdin, clicks
// button #ID and prints one JSON line: {"id", "out"} (the text the chunk wrote, or the
// import error). "quit" ends it. Exits 1 on error.
const readline = require("readline");
const { launch } = require("./launch.cjs");

const [base] = process.argv.slice(2);

(async () => {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/`, { waitUntil: "load" });
    await page.waitForFunction(() => document.querySelector("#ready")?.textContent === "ready");
    console.log("loaded");
    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      const [cmd, id] = line.trim().split(" ");
      if (cmd === "quit") break;
      if (cmd !== "click") continue;
      await page.evaluate((i) => { document.querySelector("#out").textContent = ""; }, id);
      await page.click(`#${id}`);
      await page.waitForFunction(() => document.querySelector("#out").textContent !== "", null, {
        timeout: 10000,
      });
      console.log(JSON.stringify({ id, out: await page.textContent("#out") }));
    }
  } finally {
    await browser.close();
  }
  process.exit(0); // stdin may still be open: do not wait for it
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
