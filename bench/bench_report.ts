/**
 * What a `deno task bench` run is configured with and what it reports (the `--json` output).
 * @module
 */
import type { OpCase, OpTiming } from "./op_bench.ts";
import type { TrainBenchResult } from "./train_step_bench.ts";
import type { StepReplayBenchResult } from "./step_replay_bench.ts";

/** The resolved configuration of one bench run (JSON-serialisable; echoed in the report). */
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
  /** Timed training steps, ours and stock alike. */
  steps: number;
  /** Untimed training steps before them, ours and stock alike. */
  warmup: number;
  /** Which of our kernels (`FAST_KERNEL_NAMES`) the "ours" side registers; the others run stock there. */
  kernels: string[];
  /** Also time stock tfjs kernels in the same process. */
  compareStock: boolean;
  /** Time the per-op table. */
  ops: boolean;
  /** Time the training step. */
  train: boolean;
  /**
   * Also time the step replayed with raw WebGPU next to tfjs's (`step_replay_bench.ts`, an experiment); optional so
   * that reports from before it still read.
   */
  replay?: boolean;
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
  /** Timing with stock tfjs kernels (with --compare-stock): the same warm-up and repetitions as `ours`. */
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
  /**
   * Training-step throughput, WebGPU call counts and CPU time per step with our kernels; with `--replay`, `replay`:
   * tfjs's step and its raw-WebGPU replay side by side.
   */
  train?: TrainBenchResult & { replay?: StepReplayBenchResult };
  /** The per-op table. */
  ops?: OpRow[];
  /** The stock run (with --compare-stock). */
  stock?: { train?: TrainBenchResult };
}
