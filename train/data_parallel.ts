/**
 * The trainer's side of a data-parallel job: the start-up check that every rank runs the same configuration, the
 * epoch's running sums reduced over ranks, rank 0's evaluation record shared with the others, and what a
 * checkpoint records about the job (its number of processes and each rank's sums). With one process every
 * operation is local and free.
 * @module
 */
import type { Collective } from "../dist/collective.ts";
import type { TrainConfig } from "./config.ts";
import { ConfigError, literal } from "../io/config_error.ts";

/** Running sums of an epoch on one rank (or over all of them). */
export interface EpochSums {
  lossSum: number;
  correct: number;
  seen: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Compares the SHA-256 of every rank's configuration (as JSON) at start; mismatching ranks stop every rank with the
 * same error, naming the ranks that differ and, on those ranks, the fields in which they differ from rank 0.
 * @throws {Error} on every rank when any two configurations differ.
 */
export async function checkSameConfig(collective: Collective, config: TrainConfig): Promise<void> {
  if (collective.size === 1) return;
  const json = JSON.stringify(config);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(json)));
  const hashes = await collective.allGather(hash, "the configuration check at start");
  const hex = (b: Uint8Array) => [...b.slice(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join("");
  const differ = hashes.map((h, r) => [r, hex(h)] as const).filter(([, h]) => h !== hex(hashes[0]));
  // Rank 0's configuration, so that each rank can name its own differences.
  const rootJson = await broadcastBytes(collective, encoder.encode(json), "the configuration check at start");
  if (differ.length === 0) return;
  const root = JSON.parse(decoder.decode(rootJson)) as Record<string, unknown>;
  const own = config as unknown as Record<string, unknown>;
  const fields = Object.keys({ ...root, ...own }).filter((k) => JSON.stringify(root[k]) !== JSON.stringify(own[k]));
  throw new Error(
    `the ranks of this job were given different configurations: rank${differ.length > 1 ? "s" : ""} ` +
      `${differ.map(([r, h]) => `${r} (config hash ${h})`).join(", ")} differ from rank 0 (${hex(hashes[0])})` +
      (fields.length > 0
        ? `; this rank (${collective.rank}) differs in ${
          fields.map((f) => `${f} ${JSON.stringify(own[f])} (rank 0: ${JSON.stringify(root[f])})`).join(", ")
        }`
        : "") +
      ". Start every rank with the same flags",
  );
}

/** `data` of rank 0 on every rank, of any length (its length travels first). */
async function broadcastBytes(collective: Collective, data: Uint8Array, what: string): Promise<Uint8Array> {
  const length = new Float64Array([data.length]);
  await collective.broadcast(new Uint8Array(length.buffer), 0, what);
  const out = collective.rank === 0 ? data.slice() : new Uint8Array(length[0]);
  await collective.broadcast(out, 0, what);
  return out;
}

/** A data-parallel job as the training loop sees it. */
export class DataParallel {
  readonly collective: Collective;
  constructor(collective: Collective) {
    this.collective = collective;
  }
  /** Number of processes. */
  get size(): number {
    return this.collective.size;
  }
  /** Whether this is rank 0, which evaluates, logs and writes checkpoints. */
  get isRoot(): boolean {
    return this.collective.rank === 0;
  }

  /**
   * Runs `run` on rank 0 first and on the other ranks once it has succeeded there: what it leaves on disk for the
   * others (an ImageNet archive index, `data/imagenet_index_file.ts`; a CIFAR download; a resumed run's completed
   * save) is then made by one process instead of all at once. When rank 0's `run` throws, the other ranks stop too,
   * saying so (rank 0's message is the cause), instead of waiting until the collective's timeout. The others wait up
   * to `timeoutSeconds` (default: the collective's; `Infinity`: as long as rank 0 takes, for work such as indexing
   * ImageNet from a cold disk, which may take longer than any collective should). With one process it is `run()`.
   * @throws {Error} what rank 0's `run` threw (on rank 0), or that rank 0 failed (on the others).
   */
  async rootFirst<T>(what: string, run: () => Promise<T>, timeoutSeconds?: number): Promise<T> {
    const collective = this.collective;
    if (collective.size === 1) return await run();
    const ok = new Uint8Array([1]);
    if (collective.rank === 0) {
      let result: T;
      try {
        result = await run();
      } catch (e) {
        // The others learn of the failure; rank 0's own error is the one worth reading, so it is thrown regardless.
        await collective.broadcast(new Uint8Array([0]), 0, what).catch(() => {});
        throw e;
      }
      await collective.broadcast(ok, 0, what);
      return result;
    }
    const status = new Uint8Array(1);
    await collective.broadcast(status, 0, `rank 0's ${what}`, timeoutSeconds);
    if (status[0] !== ok[0]) {
      throw new Error(`rank 0 failed ${what}, so rank ${collective.rank} stops: see rank 0's error`);
    }
    return await run();
  }

  /**
   * Whether a checkpoint written by a job of `savedSize` processes may continue in this one. The global batch (and so
   * which samples make up each step) follows the number of processes, so another number is refused, or with
   * `allowConfigChange` accepted with the current epoch restarted (returns true then).
   * @param warn given the warning, a {@linkcode ConfigError}-style template (`{allowConfigChange}` names the field).
   * @throws {ConfigError} on field `resume`, naming the checkpoint and both sizes.
   */
  checkResumeWorld(
    savedSize: number,
    path: string,
    allowConfigChange: boolean,
    warn: (template: string) => void,
  ): boolean {
    if (savedSize === this.size) return false;
    const processes = (n: number) => `${n} process${n === 1 ? "" : "es"}`;
    const what = `${literal(path)} was written by a job of ${processes(savedSize)}, this job has ${this.size}: the ` +
      "global batch ({batchSize} x processes) and so every step's images would differ";
    if (!allowConfigChange) {
      throw new ConfigError(
        "resume",
        `${what}. Resume with ${processes(savedSize)} for an exact continuation, or set {allowConfigChange} to ` +
          "continue under the new global batch from the start of the current epoch",
      );
    }
    warn(`warning: ${what}; continuing from the start of the epoch ({allowConfigChange})`);
    return true;
  }

  /** This rank's running sums from a checkpoint's record (each rank's own, when the job that wrote it had ranks). */
  ownPartial(rng: { partial: EpochSums; rankPartials?: EpochSums[] }): EpochSums {
    const own = rng.rankPartials?.[this.collective.rank];
    if (own && rng.rankPartials!.length === this.size) return own;
    return this.isRoot ? rng.partial : { lossSum: 0, correct: 0, seen: 0 };
  }

  /** The sums over every rank (float64 all-reduce). */
  async sumOverRanks(local: EpochSums, what: string): Promise<EpochSums> {
    if (this.size === 1) return local;
    const v = new Float64Array([local.lossSum, local.correct, local.seen]);
    await this.collective.allReduceSum(v, what);
    return { lossSum: v[0], correct: v[1], seen: v[2] };
  }

  /** Every rank's own sums, in rank order (for a checkpoint, so that each rank resumes its own). */
  async gatherPartials(local: EpochSums, step: number): Promise<EpochSums[]> {
    const v = new Float64Array([local.lossSum, local.correct, local.seen]);
    const all = await this.collective.allGather(new Uint8Array(v.buffer), `the checkpoint of step ${step}`);
    return all.map((bytes) => {
      const [lossSum, correct, seen] = new Float64Array(bytes.slice().buffer);
      return { lossSum, correct, seen };
    });
  }

  /** The sum of {@linkcode DataParallel.gatherPartials}' list, in rank order. */
  sumPartials(list: EpochSums[]): EpochSums {
    return list.reduce((a, b) => ({
      lossSum: a.lossSum + b.lossSum,
      correct: a.correct + b.correct,
      seen: a.seen + b.seen,
    }));
  }

  /** `compute()` on rank 0, its JSON result on every rank (the others wait, within the collective timeout). */
  async fromRoot<T>(what: string, compute: () => Promise<T>): Promise<T> {
    if (this.size === 1) return await compute();
    const mine = this.isRoot ? encoder.encode(JSON.stringify(await compute())) : new Uint8Array(0);
    return JSON.parse(decoder.decode(await broadcastBytes(this.collective, mine, what))) as T;
  }
}
