/**
 * The dashboard and the report in a real browser (headless chromium): the charts draw the run's data (pixels in the
 * run's colour on each chart's canvas, the figures in the page), a line appended to metrics.jsonl appears without a
 * reload, and report.html draws the same offline from disk. Skipped, with a message, where chromium is not installed;
 * `.ci/run` installs it.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { DashboardServer } from "../../report/dashboard_server.ts";
import { writeRunReport } from "../../report/write_report.ts";
import { findChromium, HeadlessChromium } from "./headless_chromium.ts";
import { appendFixtureEpoch, writeFixtureRun } from "./run_fixture.ts";

const CHROMIUM = findChromium();
if (CHROMIUM === null) {
  console.log("browser tests skipped: no chromium on PATH (apt-get install chromium; .ci/run installs it)");
}

const CHARTS = ["chart-loss", "chart-top1", "chart-lr", "chart-ips"];

/** Pixels of each chart's canvas in the first run's colour (#1f77b4), by chart id; -1 for a chart without canvas. */
const RUN_PIXELS = `(() => {
  const count = (c, rgb) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 150 && Math.abs(d[i] - rgb[0]) < 40 && Math.abs(d[i + 1] - rgb[1]) < 40 &&
        Math.abs(d[i + 2] - rgb[2]) < 40) n++;
    }
    return n;
  };
  const out = {};
  for (const id of ${JSON.stringify(CHARTS)}) {
    const c = document.querySelector("#" + id + " canvas");
    out[id] = c ? count(c, [0x1f, 0x77, 0xb4]) : -1;
  }
  const heat = document.querySelector("canvas.heatmap");
  const bars = document.querySelector(".bars canvas");
  out.heatmapBlue = heat ? count(heat, [0x2f, 0x5f, 0xb0]) + count(heat, [0x1c, 0x4f, 0x9a]) : -1;
  out.heatmapNonWhite = heat ? (() => {
    const d = heat.getContext("2d").getImageData(0, 0, heat.width, heat.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) n++;
    return n;
  })() : -1;
  out.bars = bars ? count(bars, [0x1f, 0x77, 0xb4]) + count(bars, [0x6c, 0xa6, 0xd0]) : -1;
  return out;
})()`;

/** The legend's last values of a chart, e.g. ["3", "0.667", "1.000"]. */
const legend = (id: string) => `[...document.querySelectorAll("#${id} .u-legend .u-value")].map((e) => e.textContent)`;

function checkPixels(pixels: Record<string, number>) {
  for (const id of CHARTS) assert(pixels[id] > 50, `${id}: ${pixels[id]} pixels in the run's colour`);
  assert(pixels.heatmapNonWhite > 500, `heat map drawn: ${JSON.stringify(pixels)}`);
  assert(pixels.bars > 200, `per-class bars drawn: ${JSON.stringify(pixels)}`);
}

Deno.test({
  name: "browser: the dashboard draws a live run, updates without reload, and report.html draws offline",
  ignore: CHROMIUM === null,
  sanitizeResources: false, // chromium's stderr drain ends with the process, after the test's own checks
  sanitizeOps: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "browser_test_" });
    const root = `${tmp}/runs`;
    const dir = `${root}/live`;
    // A finished run to overlay (drawn second, in red), then the live one (newest: first, in blue).
    await writeFixtureRun(`${root}/other`, [0.3, 0.4, 0.45], { flags: ["--lr", "0.1"] });
    await writeFixtureRun(dir, [0.5, 0.6], { eval: true, running: true });
    const dashboard = new DashboardServer({ root, pollMs: 200 });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, dashboard.handle);
    const browser = await HeadlessChromium.launch(CHROMIUM!);
    try {
      await browser.navigate(`http://127.0.0.1:${server.addr.port}/?run=live&run=other`);
      await browser.waitFor(
        `document.querySelector('tr[data-run="live"] .epochs')?.textContent === "2/3"`,
        "the runs table",
      );
      assertEquals(
        await browser.evaluate(`[...document.querySelectorAll('tr[data-run="live"] td')].map((td) => td.textContent)`),
        ["", "live", "resnet18", "synthetic", "2/3", "60.00% (test)", "60.00%", "162", "running", ""],
      );
      await browser.waitFor(`${legend("chart-top1")}.includes("45.0%")`, "the charts");
      // Overlaid, x joined over both runs: the legend shows the last epoch (3), which only "other" has.
      assertEquals(await browser.evaluate(legend("chart-top1")), ["3", "–", "–", "40.0%", "45.0%"]);
      const progress = await browser.evaluate<string>(
        `document.querySelector('.progress-row[data-run="live"]').textContent`,
      );
      assert(progress.includes("epoch 3/3 · batch 12/32 · loss 0.8765"), progress);
      assert(
        (await browser.evaluate<string>(`document.querySelector(".eval-figures").textContent`)).includes(
          "top-1 70.00%",
        ),
      );
      assertEquals(browser.errors, [], "no uncaught error in the page");
      checkPixels(await browser.evaluate<Record<string, number>>(RUN_PIXELS));

      // The run writes its third epoch: the page follows without a reload (a page variable survives).
      await browser.evaluate(`window.__sameDocument = 42`);
      const before = await browser.evaluate<Record<string, number>>(RUN_PIXELS);
      await appendFixtureEpoch(dir, 3, 0.875);
      await browser.waitFor(
        `document.querySelector('tr[data-run="live"] .epochs')?.textContent === "3/3"`,
        "the appended epoch in the runs table",
      );
      await browser.waitFor(`${legend("chart-top1")}.includes("87.5%")`, "the appended epoch in the top-1 chart");
      assertEquals(await browser.evaluate(legend("chart-top1")), ["3", "82.5%", "87.5%", "40.0%", "45.0%"]);
      assertEquals(await browser.evaluate(`window.__sameDocument`), 42, "no reload");
      const after = await browser.evaluate<Record<string, number>>(RUN_PIXELS);
      assert(after["chart-top1"] !== before["chart-top1"], "the top-1 curve was redrawn with the new point");
      assert(
        (await browser.evaluate<string>(`document.querySelector("#epochs").textContent`)).includes("87.50%"),
        "the new epoch's row",
      );

      // The report: one file, opened from disk, draws the same without any request beyond itself.
      await Deno.remove(`${dir}/run.lock`);
      const { path } = await writeRunReport(dir);
      // The dashboard's last poll may still be reported after a direct navigation (a CI run saw /api/runs/live in the
      // report's requests): leave it for a blank page first, then count the report's requests alone.
      await browser.navigate("about:blank");
      await browser.waitFor(`location.href === "about:blank"`, "the dashboard page to go");
      browser.requests.length = 0;
      await browser.navigate(`file://${path}`);
      await browser.waitFor(`${legend("chart-top1")}.includes("87.5%")`, "the report's charts");
      assertEquals(await browser.evaluate(legend("chart-top1")), ["3", "82.5%", "87.5%"]);
      checkPixels(await browser.evaluate<Record<string, number>>(RUN_PIXELS));
      const summary = await browser.evaluate<string>(`document.querySelector("#summary").textContent`);
      assert(summary.includes("resnet18 on synthetic · epochs 3/3") && summary.includes("finished"), summary);
      assert(await browser.evaluate(`document.querySelector("#config").textContent.includes("onecycle")`));
      assertEquals(browser.requests.filter((u) => !u.startsWith("file:") && !u.startsWith("data:")), []);
      assertEquals(browser.errors, [], "no uncaught error in either page");
    } finally {
      await browser.close();
      dashboard.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "browser: a run with --model-ema draws the average's val and test curves and table columns beside the model's",
  ignore: CHROMIUM === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "browser_ema_test_" });
    const browser = await HeadlessChromium.launch(CHROMIUM!);
    try {
      await writeFixtureRun(dir, [0.5, 0.6]);
      // The trainer's EMA fields on each record (metrics.jsonl is rewritten as the trainer would have written it).
      const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
      const ema = lines.map((r) => ({
        ...r,
        ema_test_loss: 0.5,
        ema_test_top1: r.test_top1 + 0.125,
        ema_test_top5: 1,
      }));
      await Deno.writeTextFile(`${dir}/metrics.jsonl`, ema.map((r) => JSON.stringify(r) + "\n").join(""));
      const { path } = await writeRunReport(dir);
      await browser.navigate(`file://${path}`);
      await browser.waitFor(`${legend("chart-top1")}.includes("72.5%")`, "the average's test top-1 in the chart");
      // Legend: epoch, train, test, ema test at the last epoch.
      assertEquals(await browser.evaluate(legend("chart-top1")), ["2", "55.0%", "60.0%", "72.5%"]);
      const table = await browser.evaluate<string>(`document.querySelector("#epochs").textContent`);
      assert(table.includes("ema test top-1") && table.includes("72.50%"), table);
      assertEquals(browser.errors, [], "no uncaught error in the page");
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
