/// <reference lib="dom" />
/**
 * The page's Classify section: a `.safetensors` checkpoint from a file picker or `?checkpoint=URL`, images dropped
 * on the page (or picked), and the top-5 classes of each with their probabilities, computed on WebGPU with our
 * kernels. `window.classify(urls)` returns the logits of images by URL (the browser test compares them with
 * `deno task eval --save-logits`).
 * @module
 */
import { type Classifier, classifyPixels, loadClassifier } from "./classifier.ts";
import { startWebGPU } from "./start_webgpu.ts";
import { evalResizeCrop } from "../data/transforms.ts";

/** What the page exposes to scripts (and to the browser test). */
declare global {
  interface Window {
    /** Logits [images][classes] of the images at `urls` with the loaded checkpoint. */
    classify?: (urls: string[]) => Promise<number[][]>;
    /** The loaded checkpoint's description, or null. */
    classifierInfo?: () => { description: string; classNames: string[]; normalization: string } | null;
  }
}

/** Decodes an image file into `size`×`size` HWC bytes: as is when it has that size, else resized and center-cropped. */
export async function imagePixels(blob: Blob, size: number): Promise<Uint8Array> {
  // No colour management or premultiplication: the bytes of a PNG are what `deno task eval` decodes.
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(size, size);
  const context = canvas.getContext("2d", { willReadFrequently: true })!;
  if (bitmap.width === size && bitmap.height === size) context.drawImage(bitmap, 0, 0);
  else {
    // `deno task eval`'s geometry (Resize(size · 256/224) then CenterCrop(size)); the browser's resampling.
    const { resized, crop } = size === 32
      ? { resized: shorterSide(bitmap.height, bitmap.width, size), crop: undefined }
      : evalResizeCrop(bitmap.height, bitmap.width, size);
    const left = crop ? crop.left : (resized.width - size) / 2, top = crop ? crop.top : (resized.height - size) / 2;
    context.imageSmoothingQuality = "high";
    context.drawImage(bitmap, -left, -top, resized.width, resized.height);
  }
  bitmap.close();
  const rgba = context.getImageData(0, 0, size, size).data;
  const rgb = new Uint8Array(size * size * 3);
  for (let p = 0; p < size * size; p++) {
    rgb[p * 3] = rgba[p * 4];
    rgb[p * 3 + 1] = rgba[p * 4 + 1];
    rgb[p * 3 + 2] = rgba[p * 4 + 2];
  }
  return rgb;
}

function shorterSide(h: number, w: number, size: number) {
  return h < w
    ? { height: size, width: Math.round((w * size) / h) }
    : { width: size, height: Math.round((h * size) / w) };
}

/** Softmax of one row of logits, in float64. */
function softmax(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  const e = Array.from(row, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Builds the Classify section into `root`. */
export function classifySection(root: HTMLElement): void {
  root.insertAdjacentHTML(
    "beforeend",
    `<h2>Classify</h2>
<p>1. A checkpoint (<code>.safetensors</code> from <code>deno task train</code> or <code>deno task export</code>):
<input type="file" id="checkpoint-file" accept=".safetensors"></p>
<p id="checkpoint-status" class="note">No checkpoint loaded.</p>
<p>2. Images: <input type="file" id="image-files" accept="image/*" multiple></p>
<div class="drop" id="drop">Drop images here</div>
<div id="results"></div>`,
  );
  const status = root.querySelector<HTMLElement>("#checkpoint-status")!;
  const results = root.querySelector<HTMLElement>("#results")!;
  let classifier: Classifier | null = null;
  const page = globalThis as unknown as Window;

  /** Shows `text`; `data-state` on the line says "busy", "ready" (a checkpoint is loaded) or "error". */
  const say = (text: string, state: "busy" | "ready" | "error") => {
    status.textContent = text;
    status.className = state === "error" ? "error" : "note";
    status.dataset.state = state;
  };

  const load = async (bytes: Uint8Array, source: string) => {
    classifier?.model.dispose();
    classifier = null;
    say(`Reading ${source}...`, "busy");
    try {
      await startWebGPU();
      classifier = loadClassifier(bytes, source);
      say(
        `${source}: ${classifier.description}; inputs ${classifier.imageSize}×${classifier.imageSize}, ` +
          `${classifier.normName} normalisation.`,
        "ready",
      );
    } catch (e) {
      say(`error: ${(e as Error).message}`, "error");
    }
  };

  root.querySelector<HTMLInputElement>("#checkpoint-file")!.addEventListener("change", async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) await load(new Uint8Array(await file.arrayBuffer()), file.name);
  });

  const show = async (files: File[]) => {
    if (!classifier) return say("error: load a checkpoint first (step 1), then drop images", "error");
    for (const file of files) {
      const item = document.createElement("div");
      item.className = "result";
      results.prepend(item);
      try {
        const pixels = await imagePixels(file, classifier.imageSize);
        const logits = await classifyPixels(classifier, pixels, 1);
        const p = softmax(logits);
        const top = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, 5);
        const img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        const table = document.createElement("table");
        table.className = "top5";
        for (const k of top) {
          const row = table.insertRow();
          row.insertCell().textContent = classifier.classNames[k];
          row.insertCell().textContent = `${(100 * p[k]).toFixed(1)}%`;
          row.insertCell().innerHTML = `<span class="bar" style="width:${Math.round(120 * p[k])}px"></span>`;
        }
        const name = document.createElement("div");
        name.textContent = file.name;
        name.append(table);
        item.append(img, name);
      } catch (e) {
        item.textContent = `error: ${file.name}: ${(e as Error).message}`;
        item.className = "result error";
      }
    }
  };
  root.querySelector<HTMLInputElement>("#image-files")!.addEventListener("change", (e) => {
    show([...(e.target as HTMLInputElement).files ?? []]);
  });
  const drop = root.querySelector<HTMLElement>("#drop")!;
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    show([...e.dataTransfer?.files ?? []].filter((f) => f.type.startsWith("image/")));
  });

  page.classify = async (urls) => {
    if (!classifier) throw new Error("no checkpoint loaded");
    const rows: number[][] = [];
    for (const url of urls) {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      const pixels = await imagePixels(await response.blob(), classifier.imageSize);
      rows.push(Array.from(await classifyPixels(classifier, pixels, 1)));
    }
    return rows;
  };
  page.classifierInfo = () =>
    classifier
      ? { description: classifier.description, classNames: classifier.classNames, normalization: classifier.normName }
      : null;

  const url = new URLSearchParams(location.search).get("checkpoint");
  if (url) {
    (async () => {
      say(`Downloading ${url}...`, "busy");
      try {
        const response = await fetch(url);
        if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
        await load(new Uint8Array(await response.arrayBuffer()), url.split("/").at(-1) || url);
      } catch (e) {
        say(`error: cannot download the checkpoint ${url}: ${(e as Error).message}`, "error");
      }
    })();
  }
}
