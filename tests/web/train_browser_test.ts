/**
 * The Train page in headless Chromium (WebGPU on SwiftShader): a ResNet-18 at width 4 on the synthetic set lowers
 * its loss within a few steps, pauses (no step while paused) and resumes, and the checkpoint the page downloads is
 * one `deno task eval` loads and evaluates. In the same page: a small archive in the official CIFAR-10 binary layout
 * given by `?cifar=URL` trains an epoch with finite losses and is tested on its test_batch, and a file that is not the
 * archive, given through the file picker, gets a message naming it. Skipped where chromium is not installed.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { bundleWebApp } from "../../web/bundle.ts";
import { DemoServer } from "../../web/demo_server.ts";
import { findChromium, HeadlessChromium } from "../report/headless_chromium.ts";
import { cifar10Archive } from "../data/cifar10_archive_fixture.ts";
import { CIFAR10_CLASS_NAMES } from "../../data/class_names.ts";

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

/** The Train section's state as the test reads it. */
interface TrainState {
  records: { loss: number; step: number }[];
  evals: { loss: number; accuracy: number; images: number }[];
  error: string | null;
  dataset: string | null;
  classes: number | null;
  cifar: string | null;
}

Deno.test({
  name: "browser: training in the page lowers the loss, pauses and resumes, its checkpoint loads in deno task eval; " +
    "CIFAR-10 from the archive trains and tests",
  ignore: CHROMIUM === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "train_browser_test_" });
    // 32 records a file: 160 training images (5 steps of 32), 32 test images.
    await Deno.writeFile(`${dir}/cifar-10-binary.tar.gz`, await cifar10Archive({ records: 32 }));
    await Deno.writeFile(`${dir}/holiday.png`, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const demo = new DemoServer({ script: await bundleWebApp(), files: dir });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, demo.handle);
    const browser = await HeadlessChromium.launch(CHROMIUM!, 30_000, true);
    try {
      await browser.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir }, false);
      await browser.navigate(`http://127.0.0.1:${server.addr.port}/?cifar=/files/cifar-10-binary.tar.gz`);
      await browser.waitFor(`!!document.getElementById("train-start")`, "the Train section");
      const summary = await browser.waitFor<string>(`window.trainer?.cifar`, "the CIFAR-10 archive read", 60_000);
      assertEquals(
        summary,
        "CIFAR-10 from cifar-10-binary.tar.gz: 160 training images (data_batch_1..5), 32 test images (test_batch), " +
          `10 classes: ${CIFAR10_CLASS_NAMES.join(", ")}`,
      );
      assertEquals(await browser.evaluate(`document.getElementById("train-data").value`), "cifar10");
      await browser.evaluate(`(() => {
        const set = (id, v) => { document.getElementById(id).value = v; };
        set("train-data", "synthetic");
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
      const state = await browser.evaluate<TrainState>(`window.trainer`);
      assertEquals([state.error, state.dataset, state.classes], [null, "synthetic", 10]);
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
      await browser.waitFor(`!window.trainer.running && !document.getElementById("train-download").hidden`, "pause");

      // CIFAR-10 from the archive: one epoch (5 steps), then the test split.
      await browser.evaluate(`(() => {
        document.getElementById("train-data").value = "cifar10";
        document.getElementById("train-lr").value = 0.05;
        document.getElementById("train-start").click();
      })()`);
      await browser.waitFor(
        `window.trainer?.evals.length || window.trainer?.error`,
        "a CIFAR-10 epoch's test",
        300_000,
      );
      const cifar = await browser.evaluate<TrainState>(`window.trainer`);
      assertEquals([cifar.error, cifar.dataset, cifar.classes, cifar.records.length], [null, "cifar10", 10, 5]);
      assert(cifar.records.every((r) => Number.isFinite(r.loss) && r.loss > 0), JSON.stringify(cifar.records));
      assertEquals(cifar.evals.length, 1);
      const [test] = cifar.evals;
      assert(
        test.images === 32 && Number.isFinite(test.loss) && test.accuracy >= 0 && test.accuracy <= 1,
        JSON.stringify(test),
      );
      const status = await browser.evaluate<string>(`document.getElementById("train-status").textContent`);
      assert(
        status.startsWith("CIFAR-10 (10 classes), epoch 1/1, step 5/5") && status.includes("test accuracy"),
        status,
      );

      // A file that is not the archive, picked as a user does: a message that names it and what was expected.
      const input = await browser.send("Runtime.evaluate", {
        expression: `document.getElementById("train-cifar")`,
      }) as { result: { objectId: string } };
      await browser.send("DOM.setFileInputFiles", { files: [`${dir}/holiday.png`], objectId: input.result.objectId });
      const bad = await browser.waitFor<string>(
        `window.trainer.cifar.startsWith("error") && window.trainer.cifar`,
        "msg",
      );
      assert(
        /^error: holiday\.png: not the CIFAR-10 binary archive \(cifar-10-binary\.tar\.gz, .*expected a gzip file/.test(
          bad,
        ),
        bad,
      );
      assertEquals(await browser.evaluate(`document.getElementById("train-data").value`), "synthetic");
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
