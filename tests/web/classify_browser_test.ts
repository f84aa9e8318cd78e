/**
 * The Classify page in headless Chromium (WebGPU on SwiftShader): an exported checkpoint loaded by `?checkpoint=URL`
 * gives the same logits on the same images as `deno task eval --save-logits` (1e-4 relative, per image), the images
 * going through the page's own path (PNG files fetched and decoded by the browser); a file that is not a checkpoint,
 * a safetensors file of another architecture and a browser without WebGPU each get a message that says so. Skipped
 * where chromium is not installed.
 * @module
 */
import { loadSharp } from "../../data/image_decode.ts";
import { assert, assertEquals } from "../assert.ts";
import { bundleWebApp } from "../../web/bundle.ts";
import { DemoServer } from "../../web/demo_server.ts";
import { generateSynthetic, SYNTHETIC_CLASS_NAMES, SYNTHETIC_SIZE } from "../../data/synthetic.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { createResNet } from "../../models/resnet.ts";
import { resnetSpec } from "../../models/resnet_spec.ts";
import { encodeWeights, saveCheckpoint } from "../../io/checkpoint.ts";
import { decodeNpy } from "../../io/npy.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";
import { parseTrainArgs } from "../../tasks/train_flags.ts";
import { findChromium, HeadlessChromium } from "../report/headless_chromium.ts";

const CHROMIUM = findChromium();
if (CHROMIUM === null) {
  console.log("browser classify test skipped: no chromium on PATH (apt-get install chromium; .ci/run installs it)");
}

/** Test images compared (the first of the synthetic test split, which eval reads in order). */
const IMAGES = 12;

async function run(script: string, ...args: string[]) {
  const path = new URL(`../../tasks/${script}`, import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", path, ...args], stderr: "piped" })
    .output();
  assertEquals(out.code, 0, `${script} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** The checkpoint line once it is final (a model loaded, or an error), else "". */
const STATUS = `(() => {
  const e = document.getElementById("checkpoint-status");
  return e && e.dataset.state !== "busy" && e.dataset.state !== undefined ? e.textContent : "";
})()`;

Deno.test({
  name: "browser: the Classify page's logits equal deno task eval --save-logits; bad files and no WebGPU are named",
  ignore: CHROMIUM === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "classify_browser_test_" });
    const files = `${dir}/files`;
    await Deno.mkdir(files);
    // A tiny ResNet-18 (CIFAR stem, width 2) as a training checkpoint of the synthetic set, then exported.
    await initWebGPU();
    const spec = resnetSpec("resnet18", { stem: "cifar", width: 2, numClasses: 10 });
    const model = createResNet(spec, { seed: 5 });
    const config = parseTrainArgs(["--dataset", "synthetic", "--width", "2"]);
    assert(config !== "help");
    await saveCheckpoint(`${dir}/last.safetensors`, {
      model: await model.exportState(),
      optimizer: new Map(),
      epoch: 1,
      globalStep: 8,
      dataPosition: { epoch: 1, batch: 0 },
      rng: null,
      config,
      bestMetric: null,
      classNames: SYNTHETIC_CLASS_NAMES,
      archSpec: spec,
    });
    model.dispose();
    await run("export.ts", "--checkpoint", `${dir}/last.safetensors`, "--out", `${files}/model.safetensors`);
    await run(
      "eval.ts",
      ...["--checkpoint", `${files}/model.safetensors`, "--dataset", "synthetic", "--save-logits", `${dir}/l.npy`],
    );
    const { data: evalLogits, shape } = decodeNpy(await Deno.readFile(`${dir}/l.npy`), "l.npy");
    assertEquals(shape, [512, 10]);
    // The same test images as PNG files, for the page to fetch and decode like dropped ones.
    const S = SYNTHETIC_SIZE;
    const test = generateSynthetic(IMAGES, 0, 2);
    const sharp = await loadSharp();
    for (let i = 0; i < IMAGES; i++) {
      const raw = test.images.slice(i * S * S * 3, (i + 1) * S * S * 3);
      await sharp(raw, { raw: { width: S, height: S, channels: 3 } }).png().toFile(`${files}/img${i}.png`);
    }
    await Deno.writeTextFile(`${files}/notes.safetensors`, "these are my notes, not a checkpoint\n");
    await Deno.writeFile(
      `${files}/other.safetensors`,
      encodeWeights(new Map([["encoder.weight", { dtype: "F32" as const, shape: [2, 2], data: new Float32Array(4) }]])),
    );

    const demo = new DemoServer({ script: await bundleWebApp(), files });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, demo.handle);
    const base = `http://127.0.0.1:${server.addr.port}/`;
    let browser = await HeadlessChromium.launch(CHROMIUM!, 30_000, true);
    try {
      await browser.navigate(`${base}?checkpoint=/files/model.safetensors`);
      const status = await browser.waitFor<string>(
        STATUS,
        "the checkpoint",
        60_000,
      );
      assert(
        /resnet18 \(basic \[2,2,2,2\], cifar stem, width 2, 10 classes\).*synthetic normalisation/.test(status),
        status,
      );
      const urls = Array.from({ length: IMAGES }, (_, i) => `/files/img${i}.png`);
      // The first images compile every shader of the model on SwiftShader: allow minutes on a loaded machine.
      const logits = await browser.evaluate<number[][]>(`window.classify(${JSON.stringify(urls)})`, 300_000);
      assertEquals(logits.length, IMAGES);
      for (let i = 0; i < IMAGES; i++) {
        const want = evalLogits.subarray(i * 10, (i + 1) * 10);
        const err = relativeError(logits[i], want);
        assert(err <= 1e-4, `image ${i}: page ${logits[i]} vs eval ${Array.from(want)}: relative error ${err}`);
      }

      const errorOf = async (file: string) => {
        await browser.navigate(`${base}?checkpoint=/files/${file}`);
        return await browser.waitFor<string>(
          STATUS,
          file,
          30_000,
        );
      };
      const notes = await errorOf("notes.safetensors");
      assert(/^error: not a checkpoint: notes\.safetensors/.test(notes), notes);
      const other = await errorOf("other.safetensors");
      assert(
        /^error: .*other\.safetensors.*not a torchvision ResNet.*This page runs torchvision ResNets/.test(other),
        other,
      );
      assertEquals(browser.errors, [], "uncaught exceptions in the page");
      await browser.close();

      // Without WebGPU (the GPU process disabled), the page says so instead of failing somewhere inside tfjs.
      browser = await HeadlessChromium.launch(CHROMIUM!);
      await browser.navigate(`${base}?checkpoint=/files/model.safetensors`);
      const none = await browser.waitFor<string>(
        STATUS,
        "no WebGPU",
        30_000,
      );
      assert(/^error: This browser does not offer WebGPU/.test(none), none);
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
