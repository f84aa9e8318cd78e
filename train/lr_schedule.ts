/**
 * Learning-rate schedules as pure functions of the global optimizer step, so that a resumed run computes exactly the
 * learning rate an uninterrupted run would have used (no scheduler state to save, nothing to "jump" after a resume).
 *
 * The values equal PyTorch's schedulers evaluated once per optimizer step (`scheduler.step()` after every batch),
 * using their closed forms:
 *
 * - `constant`: `baseLr` (PyTorch: no scheduler).
 * - `step`: `StepLR(step_size=stepSize, gamma)` stepped per epoch: `baseLr * gamma ** floor(e / stepSize)` where
 *   `e = floor(t / stepsPerEpoch)` is the epoch of step `t`, so the LR changes at epoch boundaries only.
 * - `multistep`: `MultiStepLR(milestones, gamma)` stepped per epoch: `baseLr * gamma ** (number of milestones <= e)`.
 * - `cosine`: `CosineAnnealingLR(T_max, eta_min=minLr)` stepped per step:
 *   `minLr + (baseLr - minLr) * (1 + cos(pi * t / T_max)) / 2`.
 * - `onecycle`: `OneCycleLR(max_lr=baseLr, total_steps=totalSteps, pct_start, anneal_strategy="linear",
 *   div_factor, final_div_factor, three_phase=False)` (learning rate only: momentum is not cycled).
 *
 * Warm-up (all kinds but `onecycle`, which has its own) is `SequentialLR([LinearLR(start_factor=warmupStartFactor,
 * total_iters=warmupSteps), main], milestones=[warmupSteps])` stepped per step, which is what torchvision's reference
 * script builds with `--lr-warmup-method linear`: for `t < warmupSteps` the LR is
 * `baseLr * (warmupStartFactor + (1 - warmupStartFactor) * t / warmupSteps)`; from `t = warmupSteps` on, the main
 * schedule runs on its own clock `t - warmupSteps` (SequentialLR restarts it at 0). Consequently step/multistep
 * milestones count epochs after the warm-up (torchvision's behaviour), and the cosine runs over
 * `T_max = totalSteps - warmupSteps` (torchvision's `T_max = epochs - lr_warmup_epochs`) so it reaches `minLr` at the
 * end of training.
 * @module
 */

/** The schedule families; see the module documentation for the exact formulas. */
export type ScheduleKind = "constant" | "step" | "multistep" | "cosine" | "onecycle";

/** Every schedule kind, in the order `--help` lists them. */
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ["constant", "step", "multistep", "cosine", "onecycle"];

/**
 * A learning-rate schedule, JSON-serialisable (it is stored in `config.json` and in checkpoint metadata). Fields a
 * kind does not use are ignored by it but must still be valid numbers.
 */
export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Peak learning rate: the LR after warm-up; for `onecycle`, PyTorch's `max_lr`. */
  baseLr: number;
  /** Optimizer steps in the whole run (`epochs * stepsPerEpoch`). */
  totalSteps: number;
  /** Optimizer steps per epoch; converts the epoch-based `milestones` and `stepSize` into steps. */
  stepsPerEpoch: number;
  /** Steps of linear warm-up before the main schedule (0 = none; must be 0 for `onecycle`). */
  warmupSteps: number;
  /** LR factor at step 0 of the warm-up (LinearLR's `start_factor`, torchvision's `--lr-warmup-decay`). */
  warmupStartFactor: number;
  /** `multistep`: epochs (counted after warm-up) at which the LR is multiplied by `gamma`; strictly increasing. */
  milestones: number[];
  /** `step`/`multistep`: multiplicative decay factor. */
  gamma: number;
  /** `step`: epochs between decays. */
  stepSize: number;
  /** `cosine`: final learning rate (PyTorch's `eta_min`). */
  minLr: number;
  /** `onecycle`: fraction of the steps spent increasing the LR. */
  pctStart: number;
  /** `onecycle`: initial LR = `baseLr / divFactor`. */
  divFactor: number;
  /** `onecycle`: final LR = initial LR / `finalDivFactor`. */
  finalDivFactor: number;
}

/** Warm-up starts at this fraction of the peak LR (torchvision's `--lr-warmup-decay` default). */
export const WARMUP_START_FACTOR = 0.01;

/** A run's schedule in epochs, as its configuration states it (TrainConfig has these fields). */
export interface RunSchedule
  extends
    Pick<ScheduleConfig, "milestones" | "gamma" | "stepSize" | "minLr" | "pctStart" | "divFactor" | "finalDivFactor"> {
  schedule: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  epochs: number;
  /** Epochs of linear warm-up (not for onecycle). */
  warmupEpochs: number;
}

/** The schedule of a run with `stepsPerEpoch` optimizer steps per epoch (known once the dataset is loaded). */
export function scheduleConfigFor(config: RunSchedule, stepsPerEpoch: number): ScheduleConfig {
  if (!Number.isInteger(stepsPerEpoch) || stepsPerEpoch < 1) {
    throw new RangeError(`scheduleConfigFor: stepsPerEpoch must be an integer >= 1, got ${stepsPerEpoch}`);
  }
  return {
    kind: config.schedule,
    baseLr: config.lr,
    totalSteps: config.epochs * stepsPerEpoch,
    stepsPerEpoch,
    warmupSteps: config.warmupEpochs * stepsPerEpoch,
    warmupStartFactor: WARMUP_START_FACTOR,
    milestones: [...config.milestones],
    gamma: config.gamma,
    stepSize: config.stepSize,
    minLr: config.minLr,
    pctStart: config.pctStart,
    divFactor: config.divFactor,
    finalDivFactor: config.finalDivFactor,
  };
}

/**
 * Checks that a schedule is usable and returns it; throws a RangeError naming the field, what was expected and what
 * was received. {@linkcode learningRateAt} calls it, so a bad config fails on the first step, not mid-run.
 */
export function validateScheduleConfig(config: ScheduleConfig): ScheduleConfig {
  const fail = (field: string, expected: string, got: unknown): never => {
    throw new RangeError(`ScheduleConfig.${field}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  if (!SCHEDULE_KINDS.includes(config.kind)) fail("kind", `one of ${SCHEDULE_KINDS.join("|")}`, config.kind);
  const finite = (field: keyof ScheduleConfig, min: number, minInclusive = true) => {
    const v = config[field] as number;
    if (typeof v !== "number" || !Number.isFinite(v) || (minInclusive ? v < min : v <= min)) {
      fail(field, `a finite number ${minInclusive ? ">=" : ">"} ${min}`, v);
    }
  };
  const integer = (field: keyof ScheduleConfig, min: number) => {
    const v = config[field] as number;
    if (!Number.isInteger(v) || v < min) fail(field, `an integer >= ${min}`, v);
  };
  finite("baseLr", 0);
  integer("totalSteps", 1);
  integer("stepsPerEpoch", 1);
  integer("warmupSteps", 0);
  finite("warmupStartFactor", 0);
  if (config.warmupStartFactor > 1) fail("warmupStartFactor", "a number in [0, 1]", config.warmupStartFactor);
  finite("gamma", 0);
  finite("minLr", 0);
  if (config.kind === "step") integer("stepSize", 1);
  if (!Array.isArray(config.milestones)) fail("milestones", "an array of epochs", config.milestones);
  config.milestones.forEach((m, i) => {
    if (!Number.isInteger(m) || m < 0 || (i > 0 && m <= config.milestones[i - 1])) {
      fail("milestones", "strictly increasing non-negative integers (epochs)", config.milestones);
    }
  });
  if (config.warmupSteps >= config.totalSteps && config.warmupSteps > 0) {
    fail("warmupSteps", `fewer than totalSteps (${config.totalSteps})`, config.warmupSteps);
  }
  if (config.kind === "onecycle") {
    if (config.warmupSteps !== 0) fail("warmupSteps", "0 for onecycle (it warms up by itself)", config.warmupSteps);
    finite("pctStart", 0, false);
    if (config.pctStart >= 1) fail("pctStart", "a number in (0, 1)", config.pctStart);
    finite("divFactor", 0, false);
    finite("finalDivFactor", 0, false);
    // PyTorch divides by (end_step - start_step) of the phase a step falls in. That is 0 only when
    // pctStart * totalSteps is exactly 1 (step 0 then gives 0 / 0, a ZeroDivisionError in PyTorch). A shorter first
    // phase (pctStart * totalSteps < 1, e.g. in a tiny test run) is valid: like PyTorch, every step is then in the
    // second phase.
    if (config.pctStart * config.totalSteps - 1 === 0) {
      fail("pctStart", `a value with pctStart * totalSteps != 1 (totalSteps ${config.totalSteps})`, config.pctStart);
    }
  }
  return config;
}

/**
 * The learning rate for the optimizer step `step` (0-based global step; `step = totalSteps` is allowed, like
 * PyTorch, which lets a scheduler be stepped `total_steps` times). Pure: depends only on its arguments.
 * @throws {RangeError} for a step that is not an integer in [0, totalSteps] or an invalid config.
 */
export function learningRateAt(step: number, config: ScheduleConfig): number {
  validateScheduleConfig(config);
  if (!Number.isInteger(step) || step < 0 || step > config.totalSteps) {
    throw new RangeError(`learningRateAt: step must be an integer in [0, ${config.totalSteps}], got ${step}`);
  }
  const base = config.baseLr;
  if (config.kind === "onecycle") return oneCycle(step, config);
  const w = config.warmupSteps;
  if (step < w) {
    // LinearLR closed form: base * (start + (end - start) * min(total_iters, t) / total_iters), end_factor = 1.
    const f = config.warmupStartFactor;
    return base * (f + (1 - f) * step / w);
  }
  const t = step - w; // the main scheduler's own clock (SequentialLR restarts it at the milestone)
  const epoch = Math.floor(t / config.stepsPerEpoch);
  switch (config.kind) {
    case "constant":
      return base;
    case "step":
      return base * config.gamma ** Math.floor(epoch / config.stepSize);
    case "multistep": {
      // bisect_right(milestones, epoch): milestones reached so far.
      const passed = config.milestones.filter((m) => m <= epoch).length;
      return base * config.gamma ** passed;
    }
    case "cosine": {
      const tMax = config.totalSteps - w;
      return config.minLr + (base - config.minLr) * (1 + Math.cos(Math.PI * t / tMax)) / 2;
    }
  }
}

/** OneCycleLR.get_lr with anneal_strategy="linear", three_phase=False, written in PyTorch's order of operations. */
function oneCycle(step: number, c: ScheduleConfig): number {
  const initialLr = c.baseLr / c.divFactor;
  const minLr = initialLr / c.finalDivFactor;
  const phases = [
    { endStep: c.pctStart * c.totalSteps - 1, startLr: initialLr, endLr: c.baseLr },
    { endStep: c.totalSteps - 1, startLr: c.baseLr, endLr: minLr },
  ];
  let startStep = 0;
  for (let i = 0; i < phases.length; i++) {
    const phase = phases[i];
    if (step <= phase.endStep || i === phases.length - 1) {
      const pct = (step - startStep) / (phase.endStep - startStep);
      return (phase.endLr - phase.startLr) * pct + phase.startLr;
    }
    startStep = phase.endStep;
  }
  throw new Error("unreachable: the last one-cycle phase always returns");
}
