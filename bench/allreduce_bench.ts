/**
 * What the gradient all-reduce of a data-parallel step costs: the same float32 sum over ranks that
 * `train/train_step.ts` runs on a model's flat gradient buffer, timed alone (no GPU work).
 * @module
 */
import type { Collective } from "../dist/collective.ts";

/** Timing of {@linkcode allReduceBench}, the same on every rank. */
export interface AllReduceTiming {
  floats: number;
  /** Bytes each rank hands to the all-reduce per step (the flat gradient buffer). */
  bytes: number;
  ranks: number;
  /** Wall time of one all-reduce, over `repeats` runs after the warm-up. */
  medianMs: number;
  minMs: number;
}

/** Times `repeats` all-reduces of `floats` float32 values after `warmup` untimed ones; every rank must call it. */
export async function allReduceBench(
  collective: Collective,
  floats: number,
  options: { warmup?: number; repeats?: number } = {},
): Promise<AllReduceTiming> {
  const { warmup = 3, repeats = 20 } = options;
  const data = new Float32Array(floats).fill(1 / collective.size);
  const times: number[] = [];
  for (let i = 0; i < warmup + repeats; i++) {
    const started = performance.now();
    await collective.allReduceSum(data, `the all-reduce benchmark (${i + 1})`);
    if (i >= warmup) times.push(performance.now() - started);
    data.fill(1 / collective.size); // sums of equal shares stay 1: no overflow over repeats
  }
  // The slowest rank sets the pace: agree on each rank's median, take the largest.
  times.sort((a, b) => a - b);
  const mine = new Float64Array([times[Math.floor(times.length / 2)], -times[0]]);
  const all = await collective.allGather(new Uint8Array(mine.buffer), "the all-reduce benchmark's result");
  const per = all.map((b) => new Float64Array(b.slice().buffer));
  return {
    floats,
    bytes: floats * 4,
    ranks: collective.size,
    medianMs: Math.max(...per.map((p) => p[0])),
    minMs: Math.max(...per.map((p) => -p[1])),
  };
}
