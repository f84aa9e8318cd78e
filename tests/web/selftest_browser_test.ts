/**
 * The kernel self-test in headless Chromium: Dawn's WebGPU with the Tint compiler on SwiftShader, a second WebGPU
 * implementation beside Deno's wgpu/naga. The demo server serves the bundled page; `/?selftest` runs every shared
 * kernel case (kernels/selftest/cases.ts) and the page must say that all of them passed. Skipped, with a message,
 * where chromium is not installed; `.ci/run` installs it. Slow: see the timeout below.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { bundleWebApp } from "../../web/bundle.ts";
import { DemoServer } from "../../web/demo_server.ts";
import { KERNEL_CASES } from "../../kernels/selftest/cases.ts";
import { findChromium, HeadlessChromium } from "../report/headless_chromium.ts";

const CHROMIUM = findChromium();
if (CHROMIUM === null) {
  console.log("browser self-test skipped: no chromium on PATH (apt-get install chromium; .ci/run installs it)");
}

Deno.test({
  name: "browser: every kernel case passes on Chromium's WebGPU (Dawn/Tint on SwiftShader), as /?selftest reports",
  ignore: CHROMIUM === null,
  sanitizeResources: false, // chromium's stderr drain ends with the process, after the test's own checks
  sanitizeOps: false,
  fn: async () => {
    const demo = new DemoServer({ script: await bundleWebApp() });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, demo.handle);
    const browser = await HeadlessChromium.launch(CHROMIUM!, 30_000, true);
    try {
      await browser.navigate(`http://127.0.0.1:${server.addr.port}/?selftest`);
      const outcome = await browser.waitFor<string>(
        `(() => { const t = document.getElementById("selftest")?.textContent ?? ""; return /passed|error/.test(t) && t; })()`,
        "the self-test's outcome",
        // Every (tile, loader) is its own shader and SwiftShader compiles the big tiles slowly: 400 s on this shared
        // 2-core machine at load 9-12 (2026-12-01), most of it in the 128-wide tiles (14 s each).
        900_000,
      );
      const failures = await browser.evaluate<string[]>(
        `[...document.querySelectorAll("#selftest-failures li")].map((li) => li.textContent)`,
      );
      assertEquals(browser.errors, [], "uncaught exceptions in the page");
      const m = /^(\d+) passed, (\d+) failed$/.exec(outcome);
      assert(m, `the page says ${JSON.stringify(outcome)}`);
      assertEquals(Number(m[2]), 0, `failures in the browser:\n${failures.join("\n")}`);
      assertEquals(Number(m[1]), KERNEL_CASES.length, "every case ran");
    } finally {
      await browser.close();
      await server.shutdown();
    }
  },
});
