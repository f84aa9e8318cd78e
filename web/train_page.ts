/// <reference lib="dom" />
/**
 * The page's Train section: ResNet-18 at a chosen width on the synthetic set or on CIFAR-10 from the official binary
 * archive (a file picker, or `?cifar=URL`) (web/browser_trainer.ts), a loss and accuracy chart (uPlot), the test
 * split's accuracy after each epoch, pause/resume, and a download of the checkpoint in the format `deno task train`
 * writes. `window.trainer` exposes the state to scripts (the browser test).
 * @module
 */
import uPlot from "uplot/dist/uPlot.esm.js";
import {
  type BrowserDataset,
  BrowserTrainer,
  cifar10Dataset,
  type EvalRecord,
  type StepRecord,
} from "./browser_trainer.ts";
import { readCifar10Archive } from "../data/cifar10_archive.ts";
import { startWebGPU } from "./start_webgpu.ts";

declare global {
  interface Window {
    /**
     * The Train section's state: the losses of every step so far, the test evaluations, whether it runs, the
     * dataset of the run (and its number of classes), and the CIFAR-10 archive's outcome (`cifar`: its summary or
     * `error: ...`; null before one is picked).
     */
    trainer?: {
      records: StepRecord[];
      evals: EvalRecord[];
      running: boolean;
      error: string | null;
      dataset: string | null;
      classes: number | null;
      cifar: string | null;
    };
  }
}

/** Builds the Train section into `root`. */
export function trainSection(root: HTMLElement): void {
  root.insertAdjacentHTML(
    "beforeend",
    `<h2>Train</h2>
<p>ResNet-18 on <select id="train-data"><option value="synthetic">the synthetic set</option>
<option value="cifar10" disabled>CIFAR-10</option></select> (synthetic: 10 classes of 32×32 patterns, 1,024 images;
CIFAR-10: pick the official binary archive, <a href="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
>cifar-10-binary.tar.gz</a>, 162 MB: <input id="train-cifar" type="file" accept=".gz,.tgz">)</p>
<p id="train-data-status" class="note"></p>
<p>width <input id="train-width" type="number" min="1" max="64" value="8" style="width:4em">,
batch <input id="train-batch" type="number" min="1" max="1024" value="32" style="width:5em">,
epochs <input id="train-epochs" type="number" min="1" max="100" value="2" style="width:4em">,
learning rate <input id="train-lr" type="number" min="0.0001" max="10" step="0.01" value="0.1" style="width:5em">
<button id="train-start">Start</button> <button id="train-pause" disabled>Pause</button>
<a id="train-download" href="#" download="browser-resnet18.safetensors" hidden>Download checkpoint</a></p>
<p id="train-status" class="note">Not started.</p>
<div id="train-chart"></div>`,
  );
  const $ = <T extends HTMLElement>(id: string) => root.querySelector<T>(`#${id}`)!;
  const status = $("train-status");
  const start = $<HTMLButtonElement>("train-start");
  const pause = $<HTMLButtonElement>("train-pause");
  const download = $<HTMLAnchorElement>("train-download");
  const dataSelect = $<HTMLSelectElement>("train-data");
  const dataStatus = $("train-data-status");
  const state: NonNullable<Window["trainer"]> = {
    records: [],
    evals: [],
    running: false,
    error: null,
    dataset: null,
    classes: null,
    cifar: null,
  };
  (globalThis as unknown as Window).trainer = state;
  let trainer: BrowserTrainer | null = null;
  let cifar: BrowserDataset | null = null;

  /** Reads the archive `bytes` (the file `name`) and makes CIFAR-10 the dataset of the next Start. */
  const loadCifar = async (bytes: Uint8Array, name: string) => {
    dataStatus.className = "note";
    dataStatus.textContent = `reading ${name}...`;
    try {
      cifar = cifar10Dataset(await readCifar10Archive(bytes, name));
    } catch (e) {
      cifar = null;
      state.cifar = `error: ${(e as Error).message}`;
      dataStatus.textContent = state.cifar;
      dataStatus.className = "error";
      dataSelect.options[1].disabled = true;
      dataSelect.value = "synthetic";
      return;
    }
    state.cifar = `CIFAR-10 from ${name}: ${cifar.train.count} training images (data_batch_1..5), ` +
      `${cifar.test.count} test images (test_batch), ${cifar.classNames.length} classes: ${
        cifar.classNames.join(", ")
      }`;
    dataStatus.textContent = state.cifar;
    dataSelect.options[1].disabled = false;
    dataSelect.value = "cifar10";
  };
  $<HTMLInputElement>("train-cifar").addEventListener("change", async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) await loadCifar(new Uint8Array(await file.arrayBuffer()), file.name);
  });
  const cifarUrl = new URLSearchParams(location.search).get("cifar");
  if (cifarUrl) {
    (async () => {
      const name = cifarUrl.split("/").at(-1) || cifarUrl;
      try {
        const response = await fetch(cifarUrl);
        if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
        await loadCifar(new Uint8Array(await response.arrayBuffer()), name);
      } catch (e) {
        state.cifar = `error: cannot download the CIFAR-10 archive ${cifarUrl}: ${(e as Error).message}`;
        dataStatus.textContent = state.cifar;
        dataStatus.className = "error";
      }
    })();
  }
  let chart: uPlot | null = null;
  const data: [number[], number[], number[]] = [[], [], []];

  const makeChart = () => {
    chart?.destroy();
    data.forEach((a) => a.length = 0);
    chart = new uPlot(
      {
        width: Math.min(900, root.clientWidth || 900),
        height: 260,
        scales: { x: { time: false }, acc: { range: [0, 1] } },
        axes: [{ label: "step" }, { label: "loss" }, {
          side: 1,
          scale: "acc",
          label: "batch accuracy",
          grid: { show: false },
        }],
        series: [
          { label: "step" },
          { label: "loss", stroke: "#1f77b4", width: 2 },
          { label: "accuracy", stroke: "#ff7f0e", scale: "acc" },
        ],
      },
      data,
      $("train-chart"),
    );
  };

  const loop = async () => {
    while (state.running && trainer && !trainer.done) {
      try {
        const r = await trainer.step();
        state.records.push(r);
        data[0].push(r.step);
        data[1].push(r.loss);
        data[2].push(r.accuracy);
        chart?.setData(data);
        const name = trainer.config.dataset === "cifar10" ? "CIFAR-10" : "synthetic";
        status.textContent = `${name} (${trainer.spec.numClasses} classes), epoch ${r.epoch + 1}/` +
          `${trainer.config.epochs}, step ${r.step}/${trainer.config.epochs * trainer.stepsPerEpoch}: loss ` +
          `${r.loss.toFixed(4)}, batch accuracy ${(100 * r.accuracy).toFixed(1)}%, lr ${r.lr.toPrecision(3)}`;
        if (r.batch === trainer.stepsPerEpoch - 1) { // the epoch's last step: the test split, as the trainer does
          const line = status.textContent;
          status.textContent = `${line}; testing on ${trainer.data.test.count} images...`;
          const ev = await trainer.evaluate();
          state.evals.push(ev);
          status.textContent = `${line}; test accuracy ${(100 * ev.accuracy).toFixed(1)}% (loss ` +
            `${ev.loss.toFixed(4)}, ${ev.images} images)`;
        }
      } catch (e) {
        state.error = (e as Error).message;
        status.textContent = `error: ${state.error}`;
        status.className = "error";
        state.running = false;
      }
      await new Promise((r) => setTimeout(r, 0)); // let the page draw and take clicks
    }
    if (trainer?.done) status.textContent += " (done)";
    state.running = false;
    pause.textContent = "Resume";
    pause.disabled = !trainer || trainer.done;
    download.hidden = !trainer || trainer.globalStep === 0;
  };

  start.addEventListener("click", async () => {
    state.running = false;
    trainer?.dispose();
    trainer = null;
    state.records = [];
    state.evals = [];
    state.error = null;
    status.className = "note";
    try {
      await startWebGPU();
      const number = (id: string) => Number($<HTMLInputElement>(id).value);
      trainer = new BrowserTrainer({
        width: number("train-width"),
        batchSize: number("train-batch"),
        epochs: number("train-epochs"),
        lr: number("train-lr"),
        data: dataSelect.value === "cifar10" && cifar ? cifar : undefined,
      });
      state.dataset = trainer.config.dataset;
      state.classes = trainer.spec.numClasses;
    } catch (e) {
      state.error = (e as Error).message;
      status.textContent = `error: ${state.error}`;
      status.className = "error";
      return;
    }
    status.textContent = `${trainer.spec.layers.join("-")} blocks, width ${trainer.spec.width}: first step...`;
    makeChart();
    state.running = true;
    pause.disabled = false;
    pause.textContent = "Pause";
    download.hidden = true;
    loop();
  });

  pause.addEventListener("click", () => {
    if (state.running) {
      state.running = false; // the loop stops after the step in flight and updates the button
    } else if (trainer && !trainer.done) {
      state.running = true;
      pause.textContent = "Pause";
      download.hidden = true;
      loop();
    }
  });

  download.addEventListener("click", async (e) => {
    if (!trainer || state.running) return;
    e.preventDefault();
    const bytes = await trainer.checkpoint();
    const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }));
    const a = document.createElement("a");
    a.href = url;
    a.download =
      `browser-resnet18-${trainer.config.dataset}-w${trainer.spec.width}-step${trainer.globalStep}.safetensors`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
}
