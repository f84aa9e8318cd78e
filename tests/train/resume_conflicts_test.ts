import { assertEquals } from "../assert.ts";
import { resolveTrainConfig, resumeConflicts } from "../../train/config.ts";

Deno.test("resumeConflicts: a field that changes nothing on either side (e.g. --ra-reps without --ra-sampler) is no conflict", () => {
  const saved = resolveTrainConfig({ dataset: "synthetic" }); // raReps 3, raSampler off, no EMA, onecycle
  const fields = (now: Parameters<typeof resolveTrainConfig>[0]) =>
    resumeConflicts(saved, resolveTrainConfig({ dataset: "synthetic", ...now })).map((c) => c.field);
  // A run of today's `new` recipe, written before mixup and the rest existed, resumed with them turned off: its
  // recipe's raReps 4 (unused) and EMA settings (unused) do not count.
  const inert = { ...saved, raReps: 4, modelEmaDecay: 0.9, modelEmaSteps: 7, minLr: 0.5, gamma: 0.5, stepSize: 3 };
  assertEquals(resumeConflicts(saved, inert), []);
  // Used on either side, they do.
  assertEquals(fields({ raSampler: true, raReps: 4 }), ["raSampler", "raReps"]);
  assertEquals(fields({ modelEma: true, modelEmaSteps: 7 }), ["modelEma", "modelEmaSteps"]);
  assertEquals(fields({ schedule: "cosine", minLr: 0.01 }), ["schedule", "minLr"]);
  assertEquals(resumeConflicts({ ...saved, raSampler: true }, { ...saved, raSampler: true, raReps: 4 }), [
    { field: "raReps", saved: 3, now: 4 },
  ]);
});
