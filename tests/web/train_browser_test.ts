/**
 * The Train page in headless Chromium (WebGPU on SwiftShader): a ResNet-18 at width 4 on the synthetic set lowers
 * its loss within a few steps, pauses (no step while paused) and resumes, and the checkpoint the page downloads is
 * one `deno task eval` loads and evaluates. Skipped where chromium is not installed.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { bundleWebApp } from "../../web/bundle.ts";
import { DemoServer } from "../../web/demo_server.ts";
import { findChromium, HeadlessChromium } from "../report/headless_chromium.ts";

const CHROMIUM = findChromium();
if (CHROMIUM === null) {
  console.log("browser train test skipped: no chromium on PATH (apt-get install chromium; .ci/run installs it)");
}

/** The path of the first `.safetensors` file chromium finished downloading into `dir` (within 30 s). */
async function downloaded(dir: string): Promise<string> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".safetensors")) return `${dir}/${e.name}`;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no checkpoint downloaded into ${dir}`);
}

const STEPS = `(window.trainer?.records.length ?? 0)`;

Deno.test({
  name: "browser: training in the page lowers the loss, pauses and resumes, and its checkpoint loads in deno task eval",
  ignore: CHROMIUM === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "train_browser_test_" });
    const demo = new DemoServer({ script: await bundleWebApp() });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, demo.handle);
    const browser = await HeadlessChromium.launch(CHROMIUM!, 30_000, true);
    try {
      await browser.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir }, false);
      await browser.navigate(`http://127.0.0.1:${server.addr.port}/`);
      await browser.waitFor(`!!document.getElementById("train-start")`, "the Train section");
      await browser.evaluate(`(() => {
        const set = (id, v) => { document.getElementById(id).value = v; };
        set("train-width", 4); set("train-batch", 32); set("train-epochs", 1); set("train-lr", 0.1);
        document.getElementById("train-start").click();
      })()`);
      // The first step compiles every shader of the model and its gradients on SwiftShader.
      await browser.waitFor(`${STEPS} >= 12 || window.trainer?.error`, "12 training steps", 300_000);
      await browser.evaluate(`document.getElementById("train-pause").click()`);
      await browser.waitFor(
        `window.trainer && !window.trainer.running && !document.getElementById("train-download").hidden`,
        "the pause",
      );
      const state = await browser.evaluate<{ records: { loss: number; step: number }[]; error: string | null }>(
        `window.trainer`,
      );
      assertEquals(state.error, null);
      const losses = state.records.map((r) => r.loss);
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      const [first, last] = [mean(losses.slice(0, 3)), mean(losses.slice(-3))];
      assert(last < first - 0.1, `the loss did not go down: ${losses.map((l) => l.toFixed(3)).join(", ")}`);
      // Paused: no step runs.
      const paused = state.records.length;
      await new Promise((r) => setTimeout(r, 1500));
      assertEquals(await browser.evaluate(STEPS), paused, "steps while paused");

      // The download, as a user clicks it.
      await browser.evaluate(`document.getElementById("train-download").click()`);
      const file = await downloaded(dir);
      assert(file.endsWith(`-w4-step${paused}.safetensors`), file);

      // Resume: more steps.
      await browser.evaluate(`document.getElementById("train-pause").click()`);
      await browser.waitFor(`${STEPS} > ${paused}`, "a step after resuming", 60_000);
      await browser.evaluate(`document.getElementById("train-pause").click()`);
      assertEquals(browser.errors, [], "uncaught exceptions in the page");

      const evalTask = new URL("../../tasks/eval.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", evalTask, "--checkpoint", file, "--json"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      const report = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
      assertEquals([report.source, report.dataset, report.numImages, report.spec.width], [
        "checkpoint",
        "synthetic",
        512,
        4,
      ]);
      assert(Number.isFinite(report.loss) && report.top1 >= 0 && report.top1 <= 1, JSON.stringify(report));
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
