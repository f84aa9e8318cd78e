// The expected values here come from re-implementations of PyTorch's schedulers as PyTorch computes them when
// `scheduler.step()` is called (the chainable, recursive `get_lr` forms of torch/optim/lr_scheduler.py), written
// independently of train/lr_schedule.ts, which uses the closed forms.
import { assert, assertEquals, throws } from "../assert.ts";
import { learningRateAt, type ScheduleConfig, validateScheduleConfig } from "../../train/lr_schedule.ts";

function config(overrides: Partial<ScheduleConfig>): ScheduleConfig {
  return {
    kind: "constant",
    baseLr: 0.1,
    totalSteps: 100,
    stepsPerEpoch: 10,
    warmupSteps: 0,
    warmupStartFactor: 0.01,
    milestones: [],
    gamma: 0.1,
    stepSize: 3,
    minLr: 0,
    pctStart: 0.3,
    divFactor: 25,
    finalDivFactor: 1e4,
    ...overrides,
  };
}

function assertClose(actual: number, expected: number, what: string) {
  const tol = 1e-12 * Math.max(Math.abs(expected), 1e-300) + 1e-18;
  assert(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected}`);
}

/** A PyTorch-like scheduler: `lr` is the current LR, `step()` advances `last_epoch` like `scheduler.step()`. */
interface TorchScheduler {
  lr: number;
  step(): void;
}

// torch.optim.lr_scheduler.StepLR.get_lr (recursive form).
function torchStepLR(base: number, stepSize: number, gamma: number): TorchScheduler {
  let lastEpoch = 0;
  const s = {
    lr: base,
    step() {
      lastEpoch++;
      if (lastEpoch === 0 || lastEpoch % stepSize !== 0) return;
      s.lr = s.lr * gamma;
    },
  };
  return s;
}

// torch.optim.lr_scheduler.MultiStepLR.get_lr: multiply by gamma ** milestones.count(last_epoch).
function torchMultiStepLR(base: number, milestones: number[], gamma: number): TorchScheduler {
  let lastEpoch = 0;
  const s = {
    lr: base,
    step() {
      lastEpoch++;
      const count = milestones.filter((m) => m === lastEpoch).length;
      if (count > 0) s.lr = s.lr * gamma ** count;
    },
  };
  return s;
}

// torch.optim.lr_scheduler.CosineAnnealingLR.get_lr (recursive form, the branch taken on step() calls).
function torchCosineLR(base: number, tMax: number, etaMin: number): TorchScheduler {
  let lastEpoch = 0;
  const s = {
    lr: base,
    step() {
      lastEpoch++;
      if ((lastEpoch - 1 - tMax) % (2 * tMax) === 0) {
        s.lr = s.lr + (base - etaMin) * (1 - Math.cos(Math.PI / tMax)) / 2;
      } else {
        s.lr = (1 + Math.cos(Math.PI * lastEpoch / tMax)) / (1 + Math.cos(Math.PI * (lastEpoch - 1) / tMax)) *
            (s.lr - etaMin) + etaMin;
      }
    },
  };
  return s;
}

// torch.optim.lr_scheduler.LinearLR.get_lr (end_factor 1, recursive form).
function torchLinearLR(base: number, start: number, totalIters: number): TorchScheduler {
  let lastEpoch = 0;
  const s = {
    lr: base * start,
    step() {
      lastEpoch++;
      if (lastEpoch > totalIters) return;
      s.lr = s.lr * (1 + (1 - start) / (totalIters * start + (lastEpoch - 1) * (1 - start)));
    },
  };
  return s;
}

/**
 * LR sequence of SequentialLR([LinearLR(warmup), main], milestones=[warmup]) stepped once per optimizer step, where
 * the epoch-based main scheduler (StepLR, MultiStepLR) is stepped whenever its own step clock crosses an epoch
 * boundary and the step-based one (cosine, constant) every step. SequentialLR restarts the main scheduler at 0 at the
 * milestone: the fresh scheduler object below.
 */
function torchSequence(c: ScheduleConfig, makeMain: () => TorchScheduler, perEpoch: boolean): number[] {
  const out: number[] = [];
  const warm = c.warmupSteps > 0 ? torchLinearLR(c.baseLr, c.warmupStartFactor, c.warmupSteps) : undefined;
  let main: TorchScheduler | undefined;
  for (let t = 0; t < c.totalSteps; t++) {
    if (warm && t < c.warmupSteps) {
      out.push(warm.lr);
      warm.step();
      continue;
    }
    const local = t - c.warmupSteps;
    if (!main) main = makeMain();
    else if (!perEpoch || local % c.stepsPerEpoch === 0) main.step();
    out.push(main.lr);
  }
  return out;
}

function compareAll(c: ScheduleConfig, expected: number[], label: string) {
  assertEquals(expected.length, c.totalSteps);
  for (let t = 0; t < c.totalSteps; t++) assertClose(learningRateAt(t, c), expected[t], `${label} step ${t}`);
}

Deno.test("constant: baseLr at every step, with and without warm-up", () => {
  compareAll(config({ kind: "constant" }), new Array(100).fill(0.1), "constant");
  const c = config({ kind: "constant", warmupSteps: 7, warmupStartFactor: 0.1 });
  compareAll(c, torchSequence(c, () => ({ lr: c.baseLr, step() {} }), false), "constant+warmup");
});

Deno.test("step: StepLR per epoch, with and without warm-up", () => {
  for (const warmupSteps of [0, 20]) {
    for (const stepsPerEpoch of [1, 3, 10]) {
      const c = config({ kind: "step", stepSize: 3, gamma: 0.5, warmupSteps, stepsPerEpoch, baseLr: 0.4 });
      compareAll(c, torchSequence(c, () => torchStepLR(c.baseLr, c.stepSize, c.gamma), true), `step/${warmupSteps}`);
    }
  }
  // Spot values: decays at epochs 3, 6, 9 (steps 30, 60, 90 with 10 steps per epoch).
  const c = config({ kind: "step", stepSize: 3, gamma: 0.1, baseLr: 0.1 });
  assertClose(learningRateAt(29, c), 0.1, "before the first decay");
  assertClose(learningRateAt(30, c), 0.1 * 0.1, "at the first decay");
  assertClose(learningRateAt(99, c), 0.1 * 0.1 ** 3, "after three decays");
});

Deno.test("multistep: MultiStepLR per epoch, with and without warm-up", () => {
  for (const warmupSteps of [0, 10]) {
    const c = config({ kind: "multistep", milestones: [2, 5, 6], gamma: 0.2, warmupSteps, baseLr: 0.3 });
    const got = torchSequence(c, () => torchMultiStepLR(c.baseLr, c.milestones, c.gamma), true);
    compareAll(c, got, `multistep/${warmupSteps}`);
  }
  const c = config({ kind: "multistep", milestones: [2, 5], gamma: 0.1, baseLr: 1 });
  assertClose(learningRateAt(19, c), 1, "epoch 1");
  assertClose(learningRateAt(20, c), 0.1, "epoch 2");
  assertClose(learningRateAt(50, c), 0.01, "epoch 5");
});

Deno.test("cosine: CosineAnnealingLR over the steps after warm-up", () => {
  for (const [warmupSteps, minLr] of [[0, 0], [0, 1e-3], [15, 0], [15, 1e-4]]) {
    const c = config({ kind: "cosine", warmupSteps, minLr, baseLr: 0.2, warmupStartFactor: 0.01 });
    const got = torchSequence(c, () => torchCosineLR(c.baseLr, c.totalSteps - warmupSteps, minLr), false);
    // The recursive form accumulates rounding; compare it where the LR is not vanishingly small.
    for (let t = 0; t < c.totalSteps; t++) {
      const lr = learningRateAt(t, c);
      const tol = 1e-12 * got[t] + 1e-15 * (c.totalSteps - c.warmupSteps);
      assert(Math.abs(lr - got[t]) <= tol, `cosine ${warmupSteps}/${minLr} step ${t}: ${lr} vs ${got[t]}`);
    }
    // The documented closed form, exactly: eta_min + (base - eta_min)(1 + cos(pi t / T)) / 2.
    const tMax = c.totalSteps - warmupSteps;
    for (let t = warmupSteps; t <= c.totalSteps; t++) {
      const closed = minLr + (0.2 - minLr) * (1 + Math.cos(Math.PI * (t - warmupSteps) / tMax)) / 2;
      assertClose(learningRateAt(t, c), closed, `cosine closed form step ${t}`);
    }
    assertClose(learningRateAt(c.totalSteps, c), minLr, "cosine ends at minLr");
  }
});

Deno.test("warm-up: LinearLR from warmupStartFactor * lr, reaching lr at warmupSteps", () => {
  const c = config({ kind: "cosine", warmupSteps: 4, warmupStartFactor: 0.25, baseLr: 0.8 });
  assertClose(learningRateAt(0, c), 0.2, "step 0");
  assertClose(learningRateAt(1, c), 0.8 * (0.25 + 0.75 / 4), "step 1");
  assertClose(learningRateAt(3, c), 0.8 * (0.25 + 0.75 * 3 / 4), "step 3");
  assertClose(learningRateAt(4, c), 0.8, "first step of the main schedule");
});

// torch.optim.lr_scheduler.OneCycleLR.get_lr, anneal_strategy="linear", three_phase=False, typed from the source.
function torchOneCycle(maxLr: number, total: number, pctStart: number, div: number, finalDiv: number): number[] {
  const initialLr = maxLr / div;
  const minLr = initialLr / finalDiv;
  const schedulePhases = [
    { end_step: pctStart * total - 1, start_lr: "initial_lr", end_lr: "max_lr" },
    { end_step: total - 1, start_lr: "max_lr", end_lr: "min_lr" },
  ];
  const group: Record<string, number> = { initial_lr: initialLr, max_lr: maxLr, min_lr: minLr };
  const annealLinear = (start: number, end: number, pct: number) => (end - start) * pct + start;
  const out: number[] = [];
  for (let stepNum = 0; stepNum < total; stepNum++) {
    let startStep = 0;
    let lr = NaN;
    for (const [i, phase] of schedulePhases.entries()) {
      const endStep = phase.end_step;
      if (stepNum <= endStep || i === schedulePhases.length - 1) {
        const pct = (stepNum - startStep) / (endStep - startStep);
        lr = annealLinear(group[phase.start_lr], group[phase.end_lr], pct);
        break;
      }
      startStep = phase.end_step;
    }
    out.push(lr);
  }
  return out;
}

Deno.test("onecycle: OneCycleLR(linear) against PyTorch's get_lr and known values", () => {
  const c = config({
    kind: "onecycle",
    baseLr: 0.2,
    totalSteps: 100,
    pctStart: 0.15,
    divFactor: 10,
    finalDivFactor: 100,
  });
  compareAll(c, torchOneCycle(0.2, 100, 0.15, 10, 100), "onecycle");
  // OneCycleLR(max_lr=0.2, total_steps=100, pct_start=0.15, anneal_strategy="linear", div_factor=10,
  // final_div_factor=100): phase 1 is steps 0..14 (0.02 -> 0.2), phase 2 steps 14..99 (0.2 -> 0.0002).
  const known: [number, number][] = [
    [0, 0.02],
    [7, 0.11],
    [14, 0.2],
    [15, 0.2 - 0.1998 / 85],
    [50, 0.2 - 0.1998 * 36 / 85],
    [99, 0.0002],
  ];
  for (const [t, lr] of known) assertClose(learningRateAt(t, c), lr, `onecycle step ${t}`);
  // PyTorch's defaults and a non-integer phase boundary (pct_start * total = 29.7).
  // The last two: tiny runs whose first phase is shorter than one step (PyTorch then starts in the second phase).
  const shapes = [[99, 0.3, 25, 1e4], [1000, 0.25, 10, 100], [7, 0.5, 4, 10], [4, 0.15, 10, 100], [1, 0.15, 10, 100]];
  for (const [total, pct, div, fdiv] of shapes) {
    const d = config({
      kind: "onecycle",
      baseLr: 0.05,
      totalSteps: total,
      pctStart: pct,
      divFactor: div,
      finalDivFactor: fdiv,
    });
    compareAll(d, torchOneCycle(0.05, total, pct, div, fdiv), `onecycle ${total}/${pct}`);
  }
});

Deno.test("learningRateAt is pure: the same step gives the same LR in any order (resume safety)", () => {
  const c = config({ kind: "cosine", warmupSteps: 10 });
  const forward = Array.from({ length: 100 }, (_, t) => learningRateAt(t, c));
  const backward = Array.from({ length: 100 }, (_, i) => learningRateAt(99 - i, c)).reverse();
  assertEquals(forward, backward);
});

Deno.test("bad steps and configs are RangeErrors naming the field and the value", () => {
  const c = config({ kind: "step" });
  throws(() => learningRateAt(-1, c), /step must be an integer in \[0, 100\], got -1/);
  throws(() => learningRateAt(101, c), /got 101/);
  throws(() => learningRateAt(1.5, c), /got 1.5/);
  const cases: [Partial<ScheduleConfig>, RegExp][] = [
    [{ kind: "linear" as never }, /kind: expected one of constant\|step\|multistep\|cosine\|onecycle, got "linear"/],
    [{ baseLr: NaN }, /baseLr: expected a finite number >= 0, got null/],
    [{ totalSteps: 0 }, /totalSteps: expected an integer >= 1, got 0/],
    [{ stepsPerEpoch: 2.5 }, /stepsPerEpoch: expected an integer >= 1, got 2.5/],
    [{ warmupSteps: 100 }, /warmupSteps: expected fewer than totalSteps \(100\), got 100/],
    [{ warmupStartFactor: 2 }, /warmupStartFactor: expected a number in \[0, 1\], got 2/],
    [{ kind: "step", stepSize: 0 }, /stepSize: expected an integer >= 1, got 0/],
    [{ kind: "multistep", milestones: [3, 2] }, /milestones: expected strictly increasing/],
    [{ kind: "onecycle", warmupSteps: 5 }, /warmupSteps: expected 0 for onecycle/],
    [{ kind: "onecycle", pctStart: 1 }, /pctStart: expected a number in \(0, 1\), got 1/],
    [{ kind: "onecycle", pctStart: 0.5, totalSteps: 2 }, /pctStart: expected a value with pctStart \* totalSteps != 1/],
    [{ kind: "onecycle", divFactor: 0 }, /divFactor: expected a finite number > 0, got 0/],
  ];
  for (const [bad, message] of cases) {
    throws(() => validateScheduleConfig(config(bad)), message, JSON.stringify(bad));
    throws(() => learningRateAt(0, config(bad)), message);
  }
});
