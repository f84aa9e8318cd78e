/**
 * Pure formatting of training progress: the live line (a bar redrawn with `\r` on a terminal, a plain line in CI
 * logs) and the per-epoch summary. Printing is the caller's business (entry points in `tasks/`).
 * @module
 */

/** Where a running epoch stands. */
export interface ProgressState {
  /** 1-based epoch. */
  epoch: number;
  epochs: number;
  /** Batches done in this epoch (0..batches). */
  batch: number;
  batches: number;
  /** Mean training loss so far this epoch; null before the first readback. */
  loss: number | null;
  /** Training top-1 accuracy so far this epoch, as a fraction; null before the first readback. */
  acc: number | null;
  /** Current learning rate. */
  lr: number;
  imagesPerSecond: number;
  /** Estimated seconds until the end of the run; non-finite when unknown. */
  etaSeconds: number;
}

/** How to render the progress line. */
export interface ProgressStyle {
  /** True when writing to a terminal: a `\r`-prefixed line padded to `width` that overwrites the previous one. */
  tty: boolean;
  /** Terminal columns (TTY only); default 80. */
  width?: number;
}

/** `h:mm:ss` for an hour or more, else `m:ss`; `--:--` for a negative, unknown or non-finite duration. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A learning rate with 4 significant digits, in exponent form below 1e-3 (e.g. `0.2`, `0.01973`, `2.000e-4`). */
export function formatLr(lr: number): string {
  if (lr !== 0 && Math.abs(lr) < 1e-3) return lr.toExponential(3);
  return String(Number(lr.toPrecision(4)));
}

function percent(fraction: number | null | undefined): string {
  return fraction === null || fraction === undefined || !Number.isFinite(fraction)
    ? "-"
    : `${(fraction * 100).toFixed(2)}%`;
}

function decimal(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? "-" : Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/**
 * The progress line. Plain (CI): `epoch 3/30 batch 45/98 loss 1.2345 acc 56.78% lr 0.1234 1234 img/s ETA 1:23`,
 * no trailing newline. TTY: the same fields after a `[=====>    ]` bar, prefixed with `\r` and padded or cut to
 * `width - 1` columns so each call overwrites the previous line.
 */
export function formatProgress(state: ProgressState, style: ProgressStyle): string {
  const fields = [
    `loss ${decimal(state.loss)}`,
    `acc ${percent(state.acc)}`,
    `lr ${formatLr(state.lr)}`,
    `${Number.isFinite(state.imagesPerSecond) ? Math.round(state.imagesPerSecond) : "-"} img/s`,
    `ETA ${formatDuration(state.etaSeconds)}`,
  ].join(" ");
  const epoch = `epoch ${state.epoch}/${state.epochs}`;
  const count = `${state.batch}/${state.batches}`;
  if (!style.tty) return `${epoch} batch ${count} ${fields}`;
  const width = Math.max(20, style.width ?? 80) - 1;
  const text = ` ${count} ${fields}`;
  const barWidth = Math.max(10, width - epoch.length - text.length - 3);
  const done = state.batches > 0 ? Math.min(1, Math.max(0, state.batch / state.batches)) : 0;
  const filled = Math.floor(done * barWidth);
  const bar = "=".repeat(filled) + (filled < barWidth ? ">" : "") + " ".repeat(Math.max(0, barWidth - filled - 1));
  const line = `${epoch} [${bar}]${text}`;
  return "\r" + (line.length > width ? line.slice(0, width) : line.padEnd(width));
}

/** Loss and accuracies of one split at the end of an epoch. */
export interface SplitMetrics {
  loss: number;
  top1: number;
  top5: number;
}

/** What {@linkcode formatEpochSummary} reports. */
export interface EpochSummary {
  epoch: number;
  epochs: number;
  trainLoss: number;
  trainTop1: number;
  val?: SplitMetrics;
  test?: SplitMetrics;
  /** The same for the average of the weights (`--model-ema`). */
  emaVal?: SplitMetrics;
  emaTest?: SplitMetrics;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Wall time of the epoch. */
  seconds: number;
  imagesPerSecond: number;
  /** True when this epoch is the new best (marked with `*`). */
  best?: boolean;
}

/**
 * One line per epoch, e.g.
 * `epoch 3/30 train loss 1.2345 top1 56.78% | val loss 1.1 top1 60.00% top5 95.00% | lr 0.1 | 0:12 1234 img/s *`.
 */
export function formatEpochSummary(s: EpochSummary): string {
  const parts = [`epoch ${s.epoch}/${s.epochs} train loss ${decimal(s.trainLoss)} top1 ${percent(s.trainTop1)}`];
  const splits = [["val", s.val], ["test", s.test], ["ema val", s.emaVal], ["ema test", s.emaTest]] as const;
  for (const [name, m] of splits) {
    if (m) parts.push(`${name} loss ${decimal(m.loss)} top1 ${percent(m.top1)} top5 ${percent(m.top5)}`);
  }
  parts.push(`lr ${formatLr(s.lr)}`);
  parts.push(`${formatDuration(s.seconds)} ${Math.round(s.imagesPerSecond)} img/s${s.best ? " *" : ""}`);
  return parts.join(" | ");
}
