/**
 * Writes docs/demo.png: the demo page in headless Chromium (WebGPU on SwiftShader) with a checkpoint loaded from
 * `--files`, synthetic test images dropped on it, and a few training steps in the Train section.
 *
 *     deno run -A tests/web/demo_screenshot.ts CHECKPOINT.safetensors [STEPS]
 * @module
 */
import { bundleWebApp } from "../../web/bundle.ts";
import { DemoServer } from "../../web/demo_server.ts";
import { generateSynthetic, SYNTHETIC_SIZE } from "../../data/synthetic.ts";
import { loadSharp } from "../../data/image_decode.ts";
import { findChromium, HeadlessChromium } from "../report/headless_chromium.ts";

const [checkpoint, steps = "10"] = Deno.args;
const chromium = findChromium();
if (!checkpoint || !chromium) {
  throw new Error("usage: demo_screenshot.ts CHECKPOINT.safetensors [STEPS] (needs chromium)");
}
const files = await Deno.makeTempDir({ prefix: "demo_screenshot_" });
await Deno.copyFile(checkpoint, `${files}/model.safetensors`);
const S = SYNTHETIC_SIZE;
const sharp = await loadSharp();
const test = generateSynthetic(4, 0, 2);
for (let i = 0; i < 4; i++) {
  const raw = test.images.slice(i * S * S * 3, (i + 1) * S * S * 3);
  await sharp(raw, { raw: { width: S, height: S, channels: 3 } }).png().toFile(`${files}/test-image-${i}.png`);
}
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  new DemoServer({ script: await bundleWebApp(), files }).handle,
);
const browser = await HeadlessChromium.launch(chromium, 30_000, true);
try {
  await browser.send("Emulation.setDeviceMetricsOverride", {
    width: 1100,
    height: 1250,
    deviceScaleFactor: 1,
    mobile: false,
  });
  await browser.navigate(`http://127.0.0.1:${server.addr.port}/?checkpoint=/files/model.safetensors`);
  await browser.waitFor(
    `document.getElementById("checkpoint-status")?.dataset.state === "ready"`,
    "the checkpoint",
    60_000,
  );
  // Drop the images as a user would (a drop event with files), newest first on the page.
  await browser.evaluate(`(async () => {
    const dt = new DataTransfer();
    for (let i = 3; i >= 0; i--) {
      const blob = await (await fetch("/files/test-image-" + i + ".png")).blob();
      dt.items.add(new File([blob], "test-image-" + i + ".png", { type: "image/png" }));
    }
    document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt }));
  })()`);
  await browser.waitFor(
    `document.querySelectorAll("#results table.top5").length === 4`,
    "4 classified images",
    300_000,
  );
  await browser.evaluate(`(() => {
    document.getElementById("train-width").value = 8;
    document.getElementById("train-start").click();
  })()`);
  await browser.waitFor(`(window.trainer?.records.length ?? 0) >= ${Number(steps)}`, `${steps} steps`, 600_000);
  await browser.evaluate(`document.getElementById("train-pause").click()`);
  await browser.waitFor(`!document.getElementById("train-download").hidden`, "the pause");
  const { data } = await browser.send("Page.captureScreenshot", { format: "png" }) as { data: string };
  await Deno.writeFile(
    new URL("../../docs/demo.png", import.meta.url),
    Uint8Array.from(atob(data), (c) => c.charCodeAt(0)),
  );
  console.log("wrote docs/demo.png");
} finally {
  await browser.close();
  await server.shutdown();
  await Deno.remove(files, { recursive: true });
}
