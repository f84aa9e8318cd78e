/**
 * Runs the benchmark behind `deno task bench`: the training step with our kernels (and with stock tfjs under
 * `compareStock`), then the per-op table, each op's output checked against stock's when comparing.
 * @module
 */
import type { AdapterReport } from "../kernels/webgpu_backend.ts";
import { throwOnWebGPUErrors } from "../kernels/webgpu_backend.ts";
import { registerFastKernels, restoreStockKernels } from "../kernels/register.ts";
import {
  bindGroupCacheInstalled,
  installBindGroupCache,
  uninstallBindGroupCache,
} from "../kernels/bind_group_cache.ts";
import { createResNet } from "../models/resnet.ts";
import { resnetSpec } from "../models/resnet_spec.ts";
import type { BenchConfig, BenchReport, OpRow } from "./bench_report.ts";
import { opOutput, resnetOpCases, resnetStridedOpCases, timeOp } from "./op_bench.ts";
import { relativeError } from "../kernels/selftest/relative_error.ts";
import { benchTrainStep } from "./train_step_bench.ts";
import { benchStepReplay } from "./step_replay_bench.ts";

/**
 * Most timed launches per op when stock is compared: stock's backprop-filter is ~1000× slower than ours on a GPU.
 * Both sides run the same number.
 */
const COMPARED_MAX_REPS = 10;

/** Runs the benchmark described by `config` on `adapter` and returns the report; `log` receives progress lines. */
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
  // Stock means stock tfjs: its kernels and its own uniform and bind-group creation (our cache off).
  const cache = bindGroupCacheInstalled();
  const ours = () => {
    registerFastKernels({ kernels: config.kernels });
    if (cache) installBindGroupCache();
  };
  const stock = () => {
    restoreStockKernels();
    uninstallBindGroupCache();
  };
  if (config.train) {
    const spec = resnetSpec(config.arch, { stem: config.stem, width: config.width, numClasses: config.numClasses });
    const model = createResNet(spec, { seed: 0 });
    const opts = { batchSize: config.batchSize, input: config.input, warmup: config.warmup, steps: config.steps };
    ours();
    log(`training step, ours: ${config.arch} batch ${config.batchSize} input ${config.input} width ${config.width}`);
    report.train = await benchTrainStep(model, opts);
    model.dispose();
    throwOnWebGPUErrors("in the training step with our kernels");
    if (config.replay) {
      log("training step, tfjs and replayed with raw WebGPU (bench/step_replay.ts), new batch and lr every step");
      const replayModel = createResNet(spec, { seed: 0 });
      report.train.replay = await benchStepReplay(replayModel, opts);
      replayModel.dispose();
      throwOnWebGPUErrors("in the replayed training step");
    }
    if (config.compareStock) {
      // All stock: tfjs's kernels, the composite batch norm (tf.moments + tf.batchNorm + tf.relu), SGD as tfjs ops;
      // the same warm-up and timed steps as ours.
      stock();
      log("training step, stock tfjs kernels and bind groups, composite batch norm, SGD as tfjs ops");
      const stockModel = createResNet(spec, { seed: 0, fusedBatchNorm: false });
      report.stock = { train: await benchTrainStep(stockModel, { ...opts, sgd: "ops" }) };
      stockModel.dispose();
      throwOnWebGPUErrors("in the stock training step");
    }
  }
  if (config.ops) {
    const stageSize = config.stem === "cifar" ? config.input : Math.floor(config.input / 4);
    const matmul = adapter.isFallbackAdapter ? 256 : 4096;
    const cases = [
      ...resnetOpCases(config.batchSize, config.width, stageSize, matmul),
      ...resnetStridedOpCases(config.batchSize, config.width, stageSize, config.input),
    ];
    report.ops = [];
    for (const c of cases) {
      log(`op ${c.name}`);
      ours(); // again after each stock comparison
      const row: OpRow = {
        name: c.name,
        kind: c.kind,
        xShape: c.xShape,
        wShape: c.wShape,
        ours: await timeOp(c, config.compareStock ? { maxReps: COMPARED_MAX_REPS } : {}),
      };
      if (config.compareStock) {
        // Correctness on this adapter at this size (CI checks many shapes on llvmpipe; a GPU may differ).
        const output = await opOutput(c);
        stock();
        row.stock = await timeOp(c, { reps: row.ours.reps, stock: true });
        row.relError = relativeError(output, await opOutput(c, { stock: true }));
      }
      throwOnWebGPUErrors(`in ${c.name}`);
      report.ops.push(row);
    }
  }
  ours(); // the run ends with our kernels registered, also after a stock comparison
  return report;
}
