import { assert, assertEquals } from "../assert.ts";
import { hostname } from "node:os";
import { RunCatalog } from "../../report/run_catalog.ts";
import { lrPerStep } from "../../report/run_detail.ts";
import { isRunName } from "../../report/run_name.ts";
import { PROGRESS_FILE, progressWriter } from "../../report/run_progress.ts";
import { LOCK_FILE } from "../../io/run_lock.ts";
import type { ProgressEvent } from "../../train/trainer.ts";
import { appendFixtureEpoch, FIXTURE_EVAL, fixtureConfig, STEPS, writeFixtureRun } from "./run_fixture.ts";

async function withRoot(fn: (root: string) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "run_catalog_test_" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("a finished run: summary, per-step learning rate through the logged per-epoch values, eval report", async () => {
  await withRoot(async (root) => {
    await writeFixtureRun(`${root}/done`, [0.5, 0.75, 0.7], { eval: true });
    const catalog = new RunCatalog(root);
    const list = await catalog.list();
    assertEquals(list.skipped, []);
    const [r] = list.runs;
    assertEquals(
      [r.name, r.state, r.arch, r.dataset, r.epochs, r.epochsDone, r.top1Split, r.bestTop1, r.lastTop1],
      ["done", "finished", "resnet18", "synthetic", 3, 3, "test", 0.75, 0.7],
    );
    assertEquals([r.imagesPerSecond, r.done, r.skipped], [173, 1, []]);
    const d = (await catalog.detail("done"))!;
    assertEquals(d.metrics.map((m) => m.epoch), [1, 2, 3]);
    assertEquals(d.evals, [{ file: "eval.json", report: FIXTURE_EVAL }]);
    assertEquals(d.progress, null);
    // One point per step, ending each epoch at x = epoch with the LR the epoch record logged.
    assertEquals(d.lrSteps!.epoch.length, 3 * STEPS);
    for (const m of d.metrics) assertEquals(d.lrSteps!.lr[d.lrSteps!.epoch.indexOf(m.epoch)], m.lr);
    assertEquals((d.config as { spec: unknown }).spec, FIXTURE_EVAL.spec, "config.json shown as written");
  });
});

Deno.test("lrPerStep samples a long run down to the point budget and keeps the last step", () => {
  const config = { ...fixtureConfig("x"), epochs: 90 };
  const curve = lrPerStep(config, 5000, 2000);
  assert(curve.epoch.length <= 2001, `${curve.epoch.length} points`);
  assertEquals(curve.epoch.at(-1), 90);
  assert(curve.lr.every((x) => Number.isFinite(x) && x >= 0));
});

Deno.test("a running run: its lock's owner is alive, progress.json is read, and a dead owner means stopped", async () => {
  await withRoot(async (root) => {
    const dir = `${root}/live`;
    await writeFixtureRun(dir, [0.5], { running: true });
    const catalog = new RunCatalog(root);
    const d = (await catalog.detail("live"))!;
    assertEquals([d.state, d.epochsDone, d.progress?.batch, d.progress?.loss], ["running", 1, 12, 0.8765]);
    assertEquals(d.done, (1 + 12 / STEPS) / 3, "in-epoch progress counts");
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    await child.status;
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, JSON.stringify({ pid: child.pid, host: hostname(), since: "x" }));
    const stopped = (await catalog.detail("live"))!;
    assertEquals([stopped.state, stopped.progress], ["stopped", null], "a stale progress.json is not shown");
  });
});

Deno.test("bad input: half-written last line, corrupt or missing config, empty folder, links; shown or said", async () => {
  await withRoot(async (root) => {
    // A run writing right now: the last line is cut.
    await writeFixtureRun(`${root}/torn`, [0.5, 0.6]);
    await Deno.writeTextFile(`${root}/torn/metrics.jsonl`, '{"epoch": 3, "st', { append: true });
    // Corrupt config, valid metrics.
    await writeFixtureRun(`${root}/corrupt`, [0.4]);
    await Deno.writeTextFile(`${root}/corrupt/config.json`, '{"arch": "resnet18", ');
    // No config at all, metrics only.
    await writeFixtureRun(`${root}/noconfig`, [0.3]);
    await Deno.remove(`${root}/noconfig/config.json`);
    // A config whose values break the rules, an unreadable eval.json and progress.json.
    await writeFixtureRun(`${root}/invalid`, [0.2], { running: true });
    await Deno.writeTextFile(`${root}/invalid/config.json`, JSON.stringify({ arch: "resnet18", epochs: -1 }));
    await Deno.writeTextFile(`${root}/invalid/eval.json`, JSON.stringify({ top1: 1 }));
    await Deno.writeTextFile(`${root}/invalid/${PROGRESS_FILE}`, "{");
    await Deno.mkdir(`${root}/empty`);
    await Deno.mkdir(`${root}/outside-target`);
    await writeFixtureRun(`${root}/../${root.split("/").at(-1)}-outside`, [0.9]);
    await Deno.symlink(`${root}-outside`, `${root}/link`);
    await Deno.writeTextFile(`${root}/notes.txt`, "not a run");
    await Deno.mkdir(`${root}/odd name`);
    await Deno.writeTextFile(`${root}/odd name/metrics.jsonl`, "");
    try {
      const catalog = new RunCatalog(root);
      const list = await catalog.list();
      const byName = new Map(list.runs.map((r) => [r.name, r]));
      assertEquals([...byName.keys()].sort(), ["corrupt", "invalid", "noconfig", "torn"]);
      assertEquals(list.skipped.sort(), [
        `${root}/empty: no config.json, metrics.jsonl or run.lock (empty, or not a run)`,
        `${root}/link: a symbolic link, not followed`,
        `${root}/odd name: a folder name with unusual characters, not served`,
        `${root}/outside-target: no config.json, metrics.jsonl or run.lock (empty, or not a run)`,
      ]);
      const torn = byName.get("torn")!;
      assertEquals([torn.epochsDone, torn.lastTop1, torn.state], [2, 0.6, "stopped"]);
      assert(/metrics\.jsonl:3: not valid JSON.*incomplete last line/.test(torn.skipped.join()), torn.skipped.join());
      const corrupt = byName.get("corrupt")!;
      assertEquals([corrupt.arch, corrupt.epochs, corrupt.epochsDone, corrupt.lastTop1], [null, null, 1, 0.4]);
      assert(/config\.json: not valid JSON/.test(corrupt.skipped.join()), corrupt.skipped.join());
      const noconfig = byName.get("noconfig")!;
      assertEquals([noconfig.epochsDone, noconfig.state], [1, "stopped"]);
      assert(/config\.json: missing/.test(noconfig.skipped.join()), noconfig.skipped.join());
      const invalid = (await catalog.detail("invalid"))!;
      assertEquals([invalid.arch, invalid.lrSteps, invalid.evals, invalid.progress], ["resnet18", null, [], null]);
      const notes = invalid.skipped.join("\n");
      assert(/config\.json: field/.test(notes), notes);
      assert(/eval\.json: field "loss" must be a number/.test(notes), notes);
      assert(/progress\.json: not valid JSON/.test(notes), notes);
      // Only plain names directly under the root, and no links.
      for (const name of ["link", "..", ".", "../x", "odd name", "", "empty", "nope"]) {
        assertEquals(await catalog.detail(name), null, name);
      }
    } finally {
      await Deno.remove(`${root}-outside`, { recursive: true });
    }
  });
});

Deno.test("the catalog re-reads a run when it grows, and says so for a missing runs folder", async () => {
  await withRoot(async (root) => {
    await writeFixtureRun(`${root}/grow`, [0.5]);
    const catalog = new RunCatalog(root);
    const before = (await catalog.list()).runs[0];
    await appendFixtureEpoch(`${root}/grow`, 2, 0.625);
    const after = (await catalog.list()).runs[0];
    assert(before.version !== after.version);
    assertEquals([after.epochsDone, after.lastTop1], [2, 0.625]);
    const missing = await new RunCatalog(`${root}/none`).list();
    assertEquals(missing.runs, []);
    assert(/none: no such folder/.test(missing.skipped[0]), missing.skipped[0]);
  });
});

Deno.test("isRunName: one plain path segment", () => {
  for (const ok of ["resnet18-cifar10", "demo", "a.b", "run_1+2", "x..y"]) assert(isRunName(ok), ok);
  for (const bad of ["", ".", "..", ".hidden", "../etc", "a/b", "a\\b", "%2e%2e", "a b", "a\0", "x".repeat(201)]) {
    assert(!isRunName(bad), bad);
  }
});

Deno.test("progressWriter writes at most every interval (and at epoch ends), atomically, and clears stale temps", async () => {
  await withRoot(async (dir) => {
    await Deno.writeTextFile(`${dir}/${PROGRESS_FILE}.tmp-0123abcd`, "{"); // left by a killed run
    let now = 0;
    const writer = progressWriter(dir, { minIntervalMs: 2000, now: () => now });
    const event = (batch: number): ProgressEvent => ({
      epoch: 1,
      epochs: 2,
      batch,
      batches: 10,
      globalStep: batch,
      loss: 1,
      acc: 0.5,
      lr: 0.1,
      imagesPerSecond: 50,
      etaSeconds: 9,
    });
    const read = async () => JSON.parse(await Deno.readTextFile(`${dir}/${PROGRESS_FILE}`)).batch;
    writer.update(event(1));
    await writer.flush();
    assertEquals(await read(), 1);
    now = 1000;
    writer.update(event(2)); // too soon
    await writer.flush();
    assertEquals(await read(), 1);
    now = 1500;
    writer.update(event(10)); // the epoch's end is always written
    await writer.flush();
    assertEquals(await read(), 10);
    now = 4000;
    writer.update(event(3));
    await writer.flush();
    assertEquals(await read(), 3);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(left, [PROGRESS_FILE], "no temporary file left, the stale one removed");
  });
});
