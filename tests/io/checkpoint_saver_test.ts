import { assert, assertEquals, assertStrictEquals, rejects } from "../assert.ts";
import type { StateDict } from "../../io/host_tensor.ts";
import { loadCheckpoint } from "../../io/checkpoint.ts";
import { BEST_CHECKPOINT, LAST_CHECKPOINT } from "../../io/checkpoint_dir.ts";
import { CheckpointSaver, type Stateful } from "../../io/checkpoint_saver.ts";

/** A host-only stand-in for the model or the optimizer: the saver sees nothing else of them. */
class HostState implements Stateful {
  constructor(public state: StateDict) {}
  exportState(): Promise<StateDict> {
    return Promise.resolve(copy(this.state));
  }
  importState(state: StateDict): void {
    this.state = copy(state);
  }
}

function copy(state: StateDict): StateDict {
  return new Map([...state].map(([name, t]) => [name, { ...t, shape: [...t.shape], data: t.data.slice() }]));
}

/** A model {w: [2, 2], b: [2]} and its momentum for w, with values that say which step they come from. */
function statesAt(step: number): { model: StateDict; optimizer: StateDict } {
  const f32 = (shape: number[], offset: number) => ({
    dtype: "F32" as const,
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => step + offset + i / 8),
  });
  return {
    model: new Map([["w", f32([2, 2], 0)], ["b", f32([2], 0.5)]]),
    optimizer: new Map([["w", f32([2, 2], 1000)]]),
  };
}

const RUN = { config: { arch: "resnet18", lr: 0.1 }, classNames: ["a", "b"], archSpec: { width: 2 } };

/** A saver over host stand-ins, with the objects and the messages it logs. */
function saverFor(dir: string, keep?: number) {
  const { model, optimizer } = statesAt(0);
  const objects = { model: new HostState(model), optimizer: new HostState(optimizer) };
  const messages: string[] = [];
  const saver = new CheckpointSaver(dir, { ...objects, run: RUN, keep, log: (m) => messages.push(m) });
  return { saver, ...objects, messages };
}

/** Saves the states of `step` (position: epoch step/10, batch step%10). */
function saveAt(s: ReturnType<typeof saverFor>, step: number, metric?: number) {
  ({ model: s.model.state, optimizer: s.optimizer.state } = statesAt(step));
  const dataPosition = { epoch: Math.floor(step / 10), batch: step % 10 };
  return s.saver.save({ globalStep: step, dataPosition, rng: { seed: 7, step } }, metric);
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "checkpoint_saver_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("CheckpointSaver keeps the newest N step files and writes best only when the metric improves", async () => {
  await withTempDir(async (dir) => {
    const s = saverFor(dir, 2);
    const metrics = [undefined, 0.5, 0.4, 0.5, undefined, 0.75];
    const bests: boolean[] = [];
    for (const [i, metric] of metrics.entries()) {
      assertStrictEquals(s.saver.improves(metric), [false, true, false, false, false, true][i], `improves ${metric}`);
      bests.push((await saveAt(s, 11 + i, metric)).isBest);
    }
    assertEquals(bests, [false, true, false, false, false, true], "a tie is no improvement, no metric never one");
    assertStrictEquals(s.saver.bestMetric, 0.75);
    assertStrictEquals(s.saver.lastCheckpoint, `${dir}/${LAST_CHECKPOINT}`);
    assertEquals(names(dir), [
      BEST_CHECKPOINT,
      "checkpoint-000000015.safetensors",
      "checkpoint-000000016.safetensors",
      LAST_CHECKPOINT,
    ]);
    const last = await loadCheckpoint(`${dir}/${LAST_CHECKPOINT}`);
    const best = await loadCheckpoint(`${dir}/${BEST_CHECKPOINT}`);
    assertEquals([last.globalStep, best.globalStep, best.bestMetric], [16, 16, 0.75]);
    // Everything a checkpoint holds comes from the objects, the progress and the run identity.
    assertEquals([last.model, last.optimizer], [statesAt(16).model, statesAt(16).optimizer]);
    assertEquals([last.epoch, last.dataPosition, last.rng], [1, { epoch: 1, batch: 6 }, { seed: 7, step: 16 }]);
    assertEquals([last.config, last.classNames, last.archSpec], [RUN.config, RUN.classNames, RUN.archSpec]);
    // A save without a metric records the best so far; the tie at step 14 left best at step 12.
    assertStrictEquals((await loadCheckpoint(`${dir}/checkpoint-000000015.safetensors`)).bestMetric, 0.5);

    const all = saverFor(`${dir}/all`);
    for (const step of [1, 2, 3]) await saveAt(all, step);
    assertEquals(names(`${dir}/all`).length, 3 + 1, "without keep every step file stays, no best without a metric");
  });
});

Deno.test("CheckpointSaver.resume loads the newest valid checkpoint into the model and the optimizer", async () => {
  await withTempDir(async (dir) => {
    const fresh = saverFor(dir);
    assertStrictEquals(await fresh.saver.resume("auto"), null, "an empty folder: start a new run");
    assertEquals(fresh.messages, [`no checkpoint in ${dir} to resume from; starting a new run`]);

    const writer = saverFor(dir);
    await saveAt(writer, 10, 0.25);
    await saveAt(writer, 20, 0.5);
    await saveAt(writer, 30);
    // A crash damaged the newest step file and `last` (both step 30).
    await Deno.writeFile(`${dir}/checkpoint-000000030.safetensors`, new Uint8Array(5));
    await Deno.writeFile(`${dir}/${LAST_CHECKPOINT}`, new Uint8Array(3));

    const s = saverFor(dir);
    const resumed = (await s.saver.resume("auto"))!;
    assertEquals(
      [resumed.path, resumed.globalStep, resumed.dataPosition, resumed.rng],
      [`${dir}/checkpoint-000000020.safetensors`, 20, { epoch: 2, batch: 0 }, { seed: 7, step: 20 }],
    );
    assertEquals([s.model.state, s.optimizer.state], [statesAt(20).model, statesAt(20).optimizer]);
    assertStrictEquals(s.saver.bestMetric, 0.5, "the best metric carries over");
    assert(!s.saver.improves(0.5) && s.saver.improves(0.6));
    assertEquals(s.messages.length, 4);
    assert(s.messages[0].startsWith(`warning: skipping unusable checkpoint ${dir}/checkpoint-000000030.safetensors: `));
    assert(s.messages[1].startsWith(`warning: skipping unusable checkpoint ${dir}/${LAST_CHECKPOINT}: `));
    assertEquals(s.messages[2], `resumed from ${dir}/checkpoint-000000020.safetensors: epoch 3, batch 0, step 20`);
    // The damaged `last` is replaced by the checkpoint the run resumed from.
    assertEquals(
      s.messages[3],
      `completed the save interrupted at step 20: ${dir}/${LAST_CHECKPOINT} rewritten from ${dir}/checkpoint-000000020.safetensors`,
    );

    // `last` newer than every valid step file (a damaged newest step file, or --keep pruned them): `last` wins.
    await saveAt(writer, 40);
    await Deno.writeFile(`${dir}/checkpoint-000000040.safetensors`, new Uint8Array(5));
    const fromLast = saverFor(dir);
    assertEquals((await fromLast.saver.resume("auto"))!.path, `${dir}/${LAST_CHECKPOINT}`);
    assertEquals(fromLast.optimizer.state, statesAt(40).optimizer);

    const explicit = saverFor(`${dir}/elsewhere`);
    const fromPath = (await explicit.saver.resume(`${dir}/checkpoint-000000010.safetensors`))!;
    assertEquals([fromPath.globalStep, explicit.model.state], [10, statesAt(10).model]);
    assertStrictEquals(explicit.saver.bestMetric, 0.25);

    for (const name of ["checkpoint-000000010.safetensors", "checkpoint-000000020.safetensors", LAST_CHECKPOINT]) {
      await Deno.writeFile(`${dir}/${name}`, new Uint8Array(5));
    }
    await rejects(saverFor(dir).saver.resume("auto"), /no valid checkpoint to resume from in /);
  });
});

Deno.test("CheckpointSaver's first save removes the temporary files a crashed writer left", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/last.safetensors.tmp-0a1b2c`, new Uint8Array(10));
    await Deno.writeFile(`${dir}/notes.txt`, new Uint8Array(1));
    await saveAt(saverFor(dir, 1), 1);
    assertEquals(names(dir), ["checkpoint-000000001.safetensors", LAST_CHECKPOINT, "notes.txt"]);
  });
});

Deno.test("CheckpointSaver.resume completes a save that a kill cut off after its step file", async () => {
  await withTempDir(async (dir) => {
    const writer = saverFor(dir);
    await saveAt(writer, 10, 0.25);
    // Step 20 improved the metric, but the process died right after renaming its step file into place: `last` and
    // `best` still hold step 10.
    const other = saverFor(`${dir}/other`);
    await saveAt(other, 10, 0.25);
    await saveAt(other, 20, 0.5);
    const step20 = await Deno.readFile(`${dir}/other/checkpoint-000000020.safetensors`);
    await Deno.writeFile(`${dir}/checkpoint-000000020.safetensors`, step20);
    await Deno.remove(`${dir}/other`, { recursive: true });

    const s = saverFor(dir);
    assertEquals((await s.saver.resume("auto"))!.globalStep, 20);
    assertEquals(await Deno.readFile(`${dir}/${LAST_CHECKPOINT}`), step20);
    assertEquals(await Deno.readFile(`${dir}/${BEST_CHECKPOINT}`), step20);
    assertEquals(
      s.messages.at(-1),
      `completed the save interrupted at step 20: ${dir}/${LAST_CHECKPOINT}, ${dir}/${BEST_CHECKPOINT} rewritten from ` +
        `${dir}/checkpoint-000000020.safetensors`,
    );
    // A later save that did not improve leaves `best` alone when cut off the same way.
    await saveAt(s, 30, 0.4);
    const again = saverFor(dir);
    await Deno.writeFile(`${dir}/${LAST_CHECKPOINT}`, step20);
    await again.saver.resume("auto");
    assertEquals(again.messages.at(-1)?.includes(BEST_CHECKPOINT), false, again.messages.at(-1));
  });
});

Deno.test("CheckpointSaver.resume never replaces a good best with an older or unevaluated checkpoint", async () => {
  await withTempDir(async (dir) => {
    const writer = saverFor(dir);
    await saveAt(writer, 10, 0.5);
    await saveAt(writer, 15); // mid-epoch: no metric
    await saveAt(writer, 20, 0.7);
    await saveAt(writer, 30, 0.6);
    const best = await Deno.readFile(`${dir}/${BEST_CHECKPOINT}`);
    // Resuming an older step file on purpose is no interrupted save: best (step 20, 0.7) stays.
    const explicit = saverFor(dir);
    await explicit.saver.resume(`${dir}/checkpoint-000000015.safetensors`);
    assertEquals(await Deno.readFile(`${dir}/${BEST_CHECKPOINT}`), best);
    assert(!explicit.messages.some((m) => m.startsWith("completed")), explicit.messages.join("\n"));
    // A damaged best proves nothing about which save improved: left alone, not rewritten from the newest file.
    await Deno.writeFile(`${dir}/${BEST_CHECKPOINT}`, new Uint8Array(7));
    const auto = saverFor(dir);
    await auto.saver.resume("auto");
    assertEquals(await Deno.readFile(`${dir}/${BEST_CHECKPOINT}`), new Uint8Array(7));
  });
});
