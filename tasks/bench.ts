/**
 * `deno task bench`: training-step throughput of a ResNet, its WebGPU calls and CPU time per step, and per-op GPU
 * timings of the kernels in `kernels/`, with `--compare-stock` running tfjs's stock WebGPU kernels side by side in
 * the same process (the same warm-up and repetitions on both sides).
 *
 *     deno task bench [--arch resnet18] [--batch-size N] [--input 32] [--width 64] [--steps N] [--warmup N]
 *                     [--kernels LIST] [--compare-stock] [--replay] [--json] [--skip-ops] [--skip-train] [--data]
 *
 * Defaults are full size (batch 128, width 64) on a GPU and CI-sized (batch 8, width 8, 16×16) on a software
 * adapter such as llvmpipe. The benchmark itself is `bench/run_bench.ts`; this file parses and prints.
 * @module
 */
import { runBenchData } from "./bench_data.ts";
import { choiceFlag, intFlag, parseArgs, runTask, UsageError } from "./args.ts";
import { type AdapterReport, initWebGPU } from "../kernels/webgpu_backend.ts";
import { FAST_KERNEL_NAMES } from "../kernels/register.ts";
import { ARCHITECTURES } from "../models/resnet_spec.ts";
import type { BenchConfig, BenchReport } from "../bench/bench_report.ts";
import type { OpTiming } from "../bench/op_bench.ts";
import type { TrainBenchResult } from "../bench/train_step_bench.ts";
import type { StepReplayBenchResult } from "../bench/step_replay_bench.ts";
import { runBench } from "../bench/run_bench.ts";

const USAGE = "usage: deno task bench [--arch resnet18] [--batch-size N] [--input N] [--width N] [--steps N] " +
  "[--warmup N] [--kernels LIST] [--compare-stock] [--replay] [--json] [--skip-ops] [--skip-train] [--data]";

/**
 * Parses `--kernels`: a comma-separated subset of {@linkcode FAST_KERNEL_NAMES}, or "none" (our fused batch norm and
 * SGD with every GEMM kernel stock), or "all".
 * @throws {UsageError} naming the flag and the unknown name.
 */
function kernelsFlag(value: string): string[] {
  if (value === "all") return [...FAST_KERNEL_NAMES];
  if (value === "none") return [];
  const names = value.split(",").map((n) => n.trim());
  for (const name of names) {
    if (!FAST_KERNEL_NAMES.includes(name)) {
      throw new UsageError(
        `--kernels: unknown kernel "${name}"; expected "all", "none" or a comma-separated subset of ` +
          FAST_KERNEL_NAMES.join(", "),
        "--kernels",
      );
    }
  }
  return FAST_KERNEL_NAMES.filter((n) => names.includes(n));
}

/**
 * Parses `args` into a {@linkcode BenchConfig} with defaults for `adapter`.
 * @throws {UsageError} naming the flag at fault.
 */
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
      kernels: { type: "string", default: "all" },
      "stock-steps": { type: "string" },
      "compare-stock": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      "skip-ops": { type: "boolean", default: false },
      "skip-train": { type: "boolean", default: false },
      replay: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values["stock-steps"] !== undefined) {
    throw new UsageError(
      "--stock-steps was removed: stock and ours run the same --warmup and --steps, for a fair comparison",
      "--stock-steps",
    );
  }
  const small = adapter.isFallbackAdapter;
  const int = (flag: string, value: string | undefined, fallback: number) =>
    value === undefined ? fallback : intFlag(flag, value);
  const input = int("input", values.input, small ? 16 : 32);
  const stem = input <= 64 ? "cifar" : "imagenet";
  return {
    arch: choiceFlag("arch", values.arch!, Object.keys(ARCHITECTURES)),
    batchSize: int("batch-size", values["batch-size"], small ? 8 : 128),
    input,
    width: int("width", values.width, small ? 8 : 64),
    stem,
    numClasses: stem === "cifar" ? 10 : 1000,
    steps: int("steps", values.steps, small ? 3 : 20),
    warmup: int("warmup", values.warmup, small ? 1 : 3),
    kernels: kernelsFlag(values.kernels!),
    compareStock: values["compare-stock"]!,
    ops: !values["skip-ops"],
    train: !values["skip-train"],
    replay: values.replay!,
    json: values.json!,
  };
}

/** The per-step counts and CPU time of the training step, ours and (when run) stock side by side. */
function stepCountsTable(ours: TrainBenchResult, stock?: TrainBenchResult): string[] {
  const rows: [string, (r: TrainBenchResult) => string][] = [
    ["dispatches", (r) => r.dispatchesPerStep.toFixed(1)],
    ["queue submits", (r) => r.submitsPerStep.toFixed(1)],
    ["buffers created", (r) => r.buffersCreatedPerStep.toFixed(1)],
    ["KiB uploaded", (r) => (r.bytesUploadedPerStep / 1024).toFixed(1)],
    ["bind groups created", (r) => r.bindGroupsPerStep.toFixed(1)],
    ["CPU ms (JS + encoding)", (r) => r.cpuMsPerStep.toFixed(1)],
    ["ms inside queue.submit", (r) => r.submitMsPerStep.toFixed(1)],
  ];
  const head = "per training step".padEnd(26) + "ours".padStart(10) + (stock ? "stock".padStart(10) : "");
  return [
    head,
    ...rows.map(([label, f]) => label.padEnd(26) + f(ours).padStart(10) + (stock ? f(stock).padStart(10) : "")),
  ];
}

/** tfjs's step and its replay side by side (`--replay`). */
function replayTable(r: StepReplayBenchResult): string[] {
  const rows: [string, string, string][] = [
    ["CPU ms (JS + encoding)", r.tfjsCpuMsPerStep.toFixed(2), r.replayCpuMsPerStep.toFixed(2)],
    ["ms inside queue.submit", r.tfjsSubmitMsPerStep.toFixed(1), r.replaySubmitMsPerStep.toFixed(1)],
    ["wall ms", r.tfjsMsPerStep.toFixed(1), r.replayMsPerStep.toFixed(1)],
    ["dispatches", r.tfjsDispatchesPerStep.toFixed(1), r.replayDispatchesPerStep.toFixed(1)],
    ["queue submits", r.tfjsSubmitsPerStep.toFixed(1), r.replaySubmitsPerStep.toFixed(1)],
  ];
  return [
    `replay (new batch and lr each step, ${r.steps} steps each, cycle of ${r.period}):`,
    "per training step".padEnd(26) + "tfjs".padStart(10) + "replay".padStart(10),
    ...rows.map(([label, a, b]) => label.padEnd(26) + a.padStart(10) + b.padStart(10)),
  ];
}

/** The human-readable table of `report`. */
export function formatReport(report: BenchReport): string {
  const lines = [`adapter: ${report.adapter}${report.isFallbackAdapter ? " (software fallback)" : ""}`];
  const c = report.config;
  lines.push(
    `config: ${c.arch} ${c.stem} stem, batch ${c.batchSize}, input ${c.input}, width ${c.width}, ` +
      `${c.steps} timed steps after ${c.warmup} warm-up${c.compareStock ? " (stock alike)" : ""}; our kernels: ` +
      (c.kernels.length > 0 ? c.kernels.join(", ") : "none"),
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
    lines.push(line, ...stepCountsTable(report.train, stockTrain));
    if (report.train.replay) lines.push(...replayTable(report.train.replay));
  }
  if (report.ops) {
    const hasStock = report.ops.some((r) => r.stock);
    lines.push(
      "op".padEnd(38) + "ours ms".padStart(10) + "TFLOP/s".padStart(10) +
        (hasStock
          ? "stock ms".padStart(11) + "TFLOP/s".padStart(10) + "speed-up".padStart(10) + "rel err".padStart(10)
          : "") +
        "reps".padStart(6),
    );
    for (const r of report.ops) {
      const flops = (t: OpTiming) => (t.tflops > 0 ? t.tflops.toPrecision(3) : "-").padStart(10);
      let line = r.name.padEnd(38) + r.ours.ms.toFixed(3).padStart(10) + flops(r.ours);
      if (r.stock) {
        line += r.stock.ms.toFixed(3).padStart(11) + flops(r.stock) +
          `${(r.stock.ms / r.ours.ms).toFixed(2)}x`.padStart(10) + (r.relError ?? NaN).toExponential(1).padStart(10);
      }
      lines.push(line + String(r.ours.reps).padStart(6));
    }
  }
  return lines.join("\n");
}

/** Entry point; returns the exit code (2 for a bad command line, naming the flag). */
export async function main(args: string[]): Promise<number> {
  // The input-pipeline bench needs no GPU: `deno task bench --data [--workers N] [--cifar-images N] ...`.
  if (args.includes("--data")) return await runBenchData(args.filter((a) => a !== "--data"));
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      `${USAGE}\n\nTraining-step images/s (forward, backward, SGD), WebGPU calls and CPU ms per step, and per-op GPU ` +
        "timings with our kernels;\n--compare-stock also runs stock tfjs in the same process (same warm-up and " +
        "repetitions) and checks our ops'\noutputs against stock's. --kernels: which of ours to use (all, none, or " +
        `a comma-separated subset of\n${FAST_KERNEL_NAMES.join(", ")}). Defaults: batch 128, width 64, input 32 on a ` +
        "GPU; batch 8, width 8, input 16\non a software adapter. --replay: also the step replayed with raw WebGPU " +
        "next to tfjs's, a new batch and lr\nevery step on both sides (an experiment, bench/step_replay.ts). --data: " +
        "the input pipeline instead.",
    );
    return 0;
  }
  // Flags first, so that a bad one exits 2 also where no adapter exists; the defaults then depend on the adapter.
  try {
    parseBenchArgs(args, { isFallbackAdapter: true });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message} (see --help)\n${USAGE}`);
    return 2;
  }
  const adapter = await initWebGPU();
  const { json, ...benchConfig } = parseBenchArgs(args, adapter);
  const report = await runBench(benchConfig, adapter, json ? () => {} : (l) => console.error(l));
  console.log(json ? JSON.stringify(report) : formatReport(report));
  return 0;
}

if (import.meta.main) {
  await runTask(async () => {
    const code = await main(Deno.args);
    if (code !== 0) Deno.exit(code);
  });
}
