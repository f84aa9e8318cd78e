/**
 * One row of the runs table (`/api/runs`): what a run is and how far it got, from its {@linkcode RunSnapshot}.
 * @module
 */
import type { RunSnapshot, RunState } from "./run_snapshot.ts";

/** A run at a glance. */
export interface RunSummary {
  name: string;
  state: RunState;
  /** The lock owner's host when the run is live on another machine. */
  host: string | null;
  arch: string | null;
  dataset: string | null;
  /** Planned epochs (config.json), null when unknown. */
  epochs: number | null;
  /** The last logged epoch (0: none yet). */
  epochsDone: number;
  /** The split the top-1 columns come from: validation when the run has one (it picks `best`), else test. */
  top1Split: "val" | "test" | null;
  bestTop1: number | null;
  lastTop1: number | null;
  /** Training images/s of the last logged epoch. */
  imagesPerSecond: number | null;
  /** Fraction of the run done, in-epoch progress included; null when the planned epochs are unknown. */
  done: number | null;
  updated: string | null;
  /** Changes whenever the run's files change (see runVersion). */
  version: string;
  skipped: string[];
}

/** The {@linkcode RunSummary} of a snapshot. */
export function summarizeRun(s: RunSnapshot): RunSummary {
  const text = (key: string) => (typeof s.rawConfig?.[key] === "string" ? s.rawConfig[key] as string : null);
  const epochs = s.config?.epochs ?? (typeof s.rawConfig?.epochs === "number" ? s.rawConfig.epochs : null);
  const last = s.metrics.at(-1);
  const split = s.metrics.some((m) => m.val_top1 !== undefined)
    ? "val"
    : s.metrics.some((m) => m.test_top1 !== undefined)
    ? "test"
    : null;
  const top1 = s.metrics.map((m) => split === "val" ? m.val_top1 : split === "test" ? m.test_top1 : undefined)
    .filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  const epochsDone = last?.epoch ?? 0;
  const p = s.progress;
  const inEpoch = p && p.epoch === epochsDone + 1 && p.batches > 0 ? p.batch / p.batches : 0;
  return {
    name: s.name,
    state: s.state,
    host: s.host,
    arch: s.config?.arch ?? text("arch"),
    dataset: s.config?.dataset ?? text("dataset"),
    epochs,
    epochsDone,
    top1Split: split,
    bestTop1: top1.length > 0 ? Math.max(...top1) : null,
    lastTop1: top1.at(-1) ?? null,
    imagesPerSecond: last?.images_per_second ?? null,
    done: epochs ? Math.min(1, (epochsDone + inEpoch) / epochs) : null,
    updated: s.updated,
    version: s.version,
    skipped: s.skipped,
  };
}
