/**
 * `deno task bench`: training-step throughput of a ResNet and per-op GPU timings of the kernels in `kernels/`, with
 * `--compare-stock` running tfjs's stock WebGPU kernels side by side in the same process.
 *
 *     deno task bench [--arch resnet18] [--batch-size N] [--input 32] [--width 64] [--steps N] [--warmup N]
 *                     [--compare-stock] [--stock-steps N] [--json] [--skip-ops] [--skip-train] [--data]
 *
 * Defaults are full size (batch 128, width 64) on a GPU and CI-sized (batch 8, width 8, 16×16) on a software
 * adapter such as llvmpipe.
 * @module
 */
import { runBenchData } from "./bench_data.ts";
import { parseArgs } from "./args.ts";
import { type AdapterReport, initWebGPU, throwOnWebGPUErrors } from "../kernels/webgpu_backend.ts";
import { registerFastKernels, restoreStockKernels } from "../kernels/register.ts";
import { type OpCase, opOutput, type OpTiming, resnetOpCases, timeOp } from "../bench/op_bench.ts";
import { relativeError } from "../bench/relative_error.ts";
import { benchTrainStep, type TrainBenchResult } from "../bench/train_step_bench.ts";
import { createResNet } from "../models/resnet.ts";
import { resnetSpec } from "../models/resnet_spec.ts";

const USAGE = "usage: deno task bench [--arch resnet18] [--batch-size N] [--input N] [--width N] [--steps N] " +
  "[--warmup N] [--compare-stock] [--stock-steps N] [--json] [--skip-ops] [--skip-train] [--data]";

/** The resolved configuration of one bench run (JSON-serialisable; echoed in `--json` output). */
export interface BenchConfig {
  /** torchvision architecture name, e.g. resnet18. */
  arch: string;
  /** Images per training step and batch of the op shapes. */
  batchSize: number;
  /** Input height and width. */
  input: number;
  /** Stem channels (64 in torchvision). */
  width: number;
  /** cifar for inputs up to 64 pixels, imagenet above. */
  stem: "cifar" | "imagenet";
  /** Classifier outputs: 10 (cifar stem) or 1000. */
  numClasses: number;
  /** Timed training steps with our kernels. */
  steps: number;
  /** Untimed steps before them. */
  warmup: number;
  /** Timed steps of the stock run (stock tfjs needs ~25 s per step of 128 on an H100). */
  stockSteps: number;
  /** Also time stock tfjs kernels in the same process. */
  compareStock: boolean;
  /** Time the per-op table. */
  ops: boolean;
  /** Time the training step. */
  train: boolean;
}

/** One row of the per-op table. */
export interface OpRow {
  /** Op label. */
  name: string;
  /** Which op. */
  kind: OpCase["kind"];
  /** Input shape (see OpCase). */
  xShape: number[];
  /** Filter or right-hand shape (see OpCase). */
  wShape: number[];
  /** Timing with our kernels. */
  ours: OpTiming;
  /** Timing with stock tfjs kernels (with --compare-stock). */
  stock?: OpTiming;
  /** With --compare-stock: max |ours − stock| / max |stock| over the op's output, same inputs. */
  relError?: number;
}

/** What `--json` prints. */
export interface BenchReport {
  /** WebGPU adapter name. */
  adapter: string;
  /** True on software adapters such as llvmpipe. */
  isFallbackAdapter: boolean;
  /** ISO time of the run. */
  date: string;
  /** The resolved configuration. */
  config: BenchConfig;
  /** Training-step throughput with our kernels. */
  train?: TrainBenchResult;
  /** The per-op table. */
  ops?: OpRow[];
  /** The stock run (with --compare-stock). */
  stock?: { train?: TrainBenchResult };
}

function positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag}: expected an integer >= 1, received "${value}"`);
  return n;
}

/** Parses `args` into a {@linkcode BenchConfig} with defaults for `adapter`. */
export function parseBenchArgs(args: string[], adapter: Pick<AdapterReport, "isFallbackAdapter">): BenchConfig & {
  json: boolean;
} {
  const { values } = parseArgs({
    args,
    options: {
      arch: { type: "string", default: "resnet18" },
      "batch-size": { type: "string" },
      input: { type: "string" },
      width: { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string" },
      "stock-steps": { type: "string" },
      "compare-stock": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      "skip-ops": { type: "boolean", default: false },
      "skip-train": { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const small = adapter.isFallbackAdapter;
  const input = positiveInt("input", values.input, small ? 16 : 32);
  const stem = input <= 64 ? "cifar" : "imagenet";
  return {
    arch: values.arch!,
    batchSize: positiveInt("batch-size", values["batch-size"], small ? 8 : 128),
    input,
    width: positiveInt("width", values.width, small ? 8 : 64),
    stem,
    numClasses: stem === "cifar" ? 10 : 1000,
    steps: positiveInt("steps", values.steps, small ? 3 : 20),
    warmup: positiveInt("warmup", values.warmup, small ? 1 : 3),
    stockSteps: positiveInt("stock-steps", values["stock-steps"], small ? 3 : 1),
    compareStock: values["compare-stock"]!,
    ops: !values["skip-ops"],
    train: !values["skip-train"],
    json: values.json!,
  };
}

/** Runs the benchmark described by `config` and returns the report; `log` receives progress lines. */
export async function runBench(
  config: BenchConfig,
  adapter: AdapterReport,
  log: (line: string) => void,
): Promise<BenchReport> {
  const report: BenchReport = {
    adapter: adapter.name,
    isFallbackAdapter: adapter.isFallbackAdapter,
    date: new Date().toISOString(),
    config,
  };
  if (config.train) {
    const spec = resnetSpec(config.arch, { stem: config.stem, width: config.width, numClasses: config.numClasses });
    const model = createResNet(spec, { seed: 0 });
    const opts = { batchSize: config.batchSize, input: config.input, warmup: config.warmup, steps: config.steps };
    registerFastKernels();
    log(`training step, ours: ${config.arch} batch ${config.batchSize} input ${config.input} width ${config.width}`);
    report.train = await benchTrainStep(model, opts);
    model.dispose();
    throwOnWebGPUErrors("in the training step with our kernels");
    if (config.compareStock) {
      // All stock: tfjs's kernels, the composite batch norm (tf.moments + tf.batchNorm + tf.relu), SGD as tfjs ops.
      restoreStockKernels();
      log("training step, stock tfjs kernels, composite batch norm, SGD as tfjs ops");
      const stockModel = createResNet(spec, { seed: 0, fusedBatchNorm: false });
      report.stock = {
        train: await benchTrainStep(stockModel, { ...opts, warmup: 1, steps: config.stockSteps, sgd: "ops" }),
      };
      stockModel.dispose();
      throwOnWebGPUErrors("in the stock training step");
      registerFastKernels();
    }
  }
  if (config.ops) {
    const stageSize = config.stem === "cifar" ? config.input : Math.floor(config.input / 4);
    const matmul = adapter.isFallbackAdapter ? 256 : 4096;
    report.ops = [];
    registerFastKernels(); // and again after each stock comparison
    for (const c of resnetOpCases(config.batchSize, config.width, stageSize, matmul)) {
      log(`op ${c.name}`);
      const row: OpRow = { name: c.name, kind: c.kind, xShape: c.xShape, wShape: c.wShape, ours: await timeOp(c) };
      if (config.compareStock) {
        // Correctness on this adapter at this size (CI checks many shapes on llvmpipe; a GPU may differ).
        const ours = await opOutput(c);
        restoreStockKernels();
        // Stock backprop-filter is ~1000x slower than ours on a GPU: bound its repetitions.
        row.stock = await timeOp(c, { maxReps: 10, stock: true });
        row.relError = relativeError(ours, await opOutput(c, { stock: true }));
        registerFastKernels();
      }
      throwOnWebGPUErrors(`in ${c.name}`);
      report.ops.push(row);
    }
  }
  return report;
}

/** The human-readable table of `report`. */
export function formatReport(report: BenchReport): string {
  const lines = [`adapter: ${report.adapter}${report.isFallbackAdapter ? " (software fallback)" : ""}`];
  const c = report.config;
  lines.push(
    `config: ${c.arch} ${c.stem} stem, batch ${c.batchSize}, input ${c.input}, width ${c.width}, ` +
      `${c.steps} timed steps after ${c.warmup} warm-up` + (c.compareStock ? ` (stock: ${c.stockSteps} after 1)` : ""),
  );
  const stockTrain = report.stock?.train;
  if (report.train) {
    let line = `train step (ours):  ${report.train.imagesPerSecond.toFixed(1)} img/s, ` +
      `${report.train.msPerStep.toFixed(1)} ms/step`;
    if (stockTrain) {
      line += `\ntrain step (stock): ${stockTrain.imagesPerSecond.toFixed(1)} img/s, ` +
        `${stockTrain.msPerStep.toFixed(1)} ms/step\nspeed-up: ${
          (report.train.imagesPerSecond / stockTrain.imagesPerSecond).toFixed(2)
        }x`;
    }
    lines.push(line);
  }
  if (report.ops) {
    const hasStock = report.ops.some((r) => r.stock);
    lines.push(
      "op".padEnd(34) + "ours ms".padStart(10) + "TFLOP/s".padStart(10) +
        (hasStock
          ? "stock ms".padStart(11) + "TFLOP/s".padStart(10) + "speed-up".padStart(10) + "rel err".padStart(10)
          : ""),
    );
    for (const r of report.ops) {
      const flops = (t: OpTiming) => (t.tflops > 0 ? t.tflops.toPrecision(3) : "-").padStart(10);
      let line = r.name.padEnd(34) + r.ours.ms.toFixed(3).padStart(10) + flops(r.ours);
      if (r.stock) {
        line += r.stock.ms.toFixed(3).padStart(11) + flops(r.stock) +
          `${(r.stock.ms / r.ours.ms).toFixed(2)}x`.padStart(10) + (r.relError ?? NaN).toExponential(1).padStart(10);
      }
      lines.push(line);
    }
  }
  return lines.join("\n");
}

/** Entry point; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  // The input-pipeline bench needs no GPU: `deno task bench --data [--workers N] [--cifar-images N] ...`.
  if (args.includes("--data")) return await runBenchData(args.filter((a) => a !== "--data"));
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      `${USAGE}\n\nTraining-step images/s (forward, backward, SGD) and per-op GPU timings with our kernels; ` +
        "--compare-stock also runs\nstock tfjs in the same process and checks our ops' outputs against stock's. " +
        "Defaults: batch 128, width 64,\ninput 32 on a GPU; batch 8, width 8, input 16 on a software adapter. " +
        "--data: the input pipeline instead.",
    );
    return 0;
  }
  const adapter = await initWebGPU();
  let config;
  try {
    config = parseBenchArgs(args, adapter);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { json, ...benchConfig } = config;
  const report = await runBench(benchConfig, adapter, json ? () => {} : (l) => console.error(l));
  console.log(json ? JSON.stringify(report) : formatReport(report));
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
