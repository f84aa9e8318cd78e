import { assert, assertEquals, rejects, throws } from "../assert.ts";
import { launcherWorld } from "../../dist/launcher_env.ts";
import { openCollective } from "../../dist/open_collective.ts";
import { CollectiveTimeoutError, LocalCollective } from "../../dist/collective.ts";
import { ConfigError, FieldMessageError } from "../../io/config_error.ts";
import { flagOf } from "../../tasks/args.ts";
import { openMpiLibrary } from "../../dist/mpi_library.ts";
import { shardSlice } from "../../data/batch_plan.ts";
import { DataParallel } from "../../train/data_parallel.ts";
import type { Collective } from "../../dist/collective.ts";

Deno.test("launcherWorld: Open MPI, PMI, PMIx and Slurm variables; none means a plain process", () => {
  assertEquals(launcherWorld({}), null);
  assertEquals(launcherWorld({ OMPI_COMM_WORLD_RANK: "3", OMPI_COMM_WORLD_SIZE: "8" }), {
    rank: 3,
    size: 8,
    source: "OMPI_COMM_WORLD_SIZE",
  });
  assertEquals(launcherWorld({ PMI_RANK: "0", PMI_SIZE: "2" })?.size, 2);
  assertEquals(launcherWorld({ SLURM_PROCID: "5", SLURM_STEP_NUM_TASKS: "16", SLURM_NTASKS: "16" })?.rank, 5);
  // An sbatch script (SLURM_PROCID 0, SLURM_NTASKS from --ntasks) running train by itself, outside srun: one process.
  assertEquals(launcherWorld({ SLURM_PROCID: "0", SLURM_NTASKS: "8" }), null);
  assertEquals(launcherWorld({ SLURM_PROCID: "0" }), null);
  // PMIx names no size of its own: MPI_Comm_size will say.
  assertEquals(launcherWorld({ PMIX_RANK: "1" }), { rank: 1, size: 0, source: "PMIX_RANK" });
  throws(() => launcherWorld({ OMPI_COMM_WORLD_RANK: "2", OMPI_COMM_WORLD_SIZE: "2" }), /expected 0 <= rank < size/);
  throws(() => launcherWorld({ PMI_RANK: "x", PMI_SIZE: "2" }), /PMI_RANK is "x": expected a whole number/);
});

Deno.test("openCollective: one process (no launcher, or a launcher of one) never loads an MPI library", async () => {
  for (const env of [{}, { SLURM_PROCID: "0", SLURM_STEP_NUM_TASKS: "1" }, { SLURM_PROCID: "0", SLURM_NTASKS: "4" }]) {
    const c = openCollective({ timeoutSeconds: 1, env, libraryNames: ["libmpi-that-does-not-exist.so"] });
    assert(c instanceof LocalCollective);
    const data = new Float32Array([1, 2]);
    await c.allReduceSum(data, "test");
    assertEquals([...data], [1, 2]);
    assertEquals(await c.allGather(new Uint8Array([7]), "test"), [new Uint8Array([7])]);
  }
  const maps = await Deno.readTextFile("/proc/self/maps").catch(() => "");
  assert(!/libmpi/.test(maps), "libmpi is mapped into a single process");
});

Deno.test("a launcher without a loadable MPI library is an error naming what was tried and what to install", () => {
  const names = ["libmpi-missing.so.40", "libmpi-missing.so.12"];
  throws(
    () =>
      openCollective({
        timeoutSeconds: 1,
        env: { OMPI_COMM_WORLD_RANK: "0", OMPI_COMM_WORLD_SIZE: "2" },
        libraryNames: names,
      }),
    /no MPI library loads \(tried libmpi-missing\.so\.40, libmpi-missing\.so\.12: .*libmpi-missing\.so\.40.*\)\. Install Open MPI/,
  );
  throws(() => openMpiLibrary([]), /no MPI library loads/);
});

Deno.test("shardSlice: DistributedSampler's indices[rank::size] of the global batch", () => {
  const batch = Uint32Array.from([10, 11, 12, 13, 14, 15, 16, 17]);
  assertEquals([...shardSlice(batch, { rank: 0, size: 2 })], [10, 12, 14, 16]);
  assertEquals([...shardSlice(batch, { rank: 1, size: 2 })], [11, 13, 15, 17]);
  assertEquals([...shardSlice(batch, { rank: 2, size: 3 })], [12, 15]);
  assertEquals(shardSlice(batch, { rank: 0, size: 1 }), batch);
  throws(() => shardSlice(batch, { rank: 1, size: 1 }), /rank 1 of 1/);
});

Deno.test("DataParallel: another number of processes is refused on resume, or restarts the epoch when allowed", async () => {
  const dp = new DataParallel(new LocalCollective());
  assertEquals(dp.checkResumeWorld(1, "x.safetensors", false, () => {}), false);
  // A ConfigError (a usage error, exit 2, like every other resume mismatch) whose fields a command line names as flags.
  throws(
    () => dp.checkResumeWorld(2, "runs/{a}/last.safetensors", false, () => {}),
    (e: Error) =>
      e instanceof ConfigError && e.field === "resume" &&
      e.describe(flagOf) === "runs/{a}/last.safetensors was written by a job of 2 processes, this job has 1: the " +
          "global batch (--batch-size x processes) and so every step's images would differ. Resume with 2 processes " +
          "for an exact continuation, or set --allow-config-change to continue under the new global batch from the " +
          "start of the current epoch",
  );
  const logged: string[] = [];
  assertEquals(dp.checkResumeWorld(4, "y", true, (m) => logged.push(new FieldMessageError(m).describe(flagOf))), true);
  assertEquals(
    logged,
    [
      "warning: y was written by a job of 4 processes, this job has 1: the global batch (--batch-size x processes) " +
      "and so every step's images would differ; continuing from the start of the epoch (--allow-config-change)",
    ],
  );
  // Each rank continues its own running sums; rank 0 of a job that wrote none takes the total.
  const sums = (n: number) => ({ lossSum: n, correct: n, seen: n });
  assertEquals(dp.ownPartial({ partial: sums(3) }), sums(3));
  assertEquals(dp.ownPartial({ partial: sums(3), rankPartials: [sums(1)] }), sums(1));
  assertEquals(await dp.fromRoot("test", () => Promise.resolve({ a: 1 })), { a: 1 });
  await rejects(() => new LocalCollective().broadcast(new Uint8Array(1), 1, "test"), /root 1 of a single process/);
});

/** Two ranks in one process whose broadcasts pair up in call order (what rootFirst needs; the rest is unused). */
const timeouts = new WeakMap<Collective, (number | undefined)[]>();
const timeoutsOf = (c: Collective) => timeouts.get(c)!;

function twoRanks(): [Collective, Collective] {
  const sent: Uint8Array[] = [];
  const waiting: ((d: Uint8Array) => void)[] = [];
  const rank = (r: number): Collective => ({
    rank: r,
    size: 2,
    description: "two ranks in one process",
    broadcast(data, _root, _what, timeoutSeconds) {
      timeoutsOf(this).push(timeoutSeconds);
      if (r === 0) {
        const w = waiting.shift();
        if (w) w(data.slice());
        else sent.push(data.slice());
        return Promise.resolve();
      }
      const ready = sent.shift();
      if (ready) return Promise.resolve(void data.set(ready));
      return new Promise((resolve) => waiting.push((d) => resolve(void data.set(d))));
    },
    allReduceSum: () => Promise.reject(new Error("unused")),
    allGather: () => Promise.reject(new Error("unused")),
    abort: () => {
      throw new Error("unused");
    },
    finalize: () => {},
  });
  const ranks: [Collective, Collective] = [rank(0), rank(1)];
  for (const c of ranks) timeouts.set(c, []);
  return ranks;
}

Deno.test("DataParallel.rootFirst: the other ranks open the data only once rank 0 has, and stop when rank 0 fails", async () => {
  const order: string[] = [];
  const open = (name: string, ms: number) => async () => {
    order.push(`${name} starts`);
    await new Promise((r) => setTimeout(r, ms));
    order.push(`${name} done`);
    return name;
  };
  const [r0, r1] = twoRanks();
  // Rank 1 asks first and would finish first; it must wait for rank 0.
  const results = await Promise.all([
    new DataParallel(r1).rootFirst("opening the data", open("rank 1", 1)),
    new DataParallel(r0).rootFirst("x", open("rank 0", 30)),
  ]);
  assertEquals(results, ["rank 1", "rank 0"]);
  assertEquals(order, ["rank 0 starts", "rank 0 done", "rank 1 starts", "rank 1 done"]);

  const [f0, f1] = twoRanks();
  let opened = false;
  const failing = new DataParallel(f0).rootFirst(
    "opening the data",
    () => Promise.reject(new Error("data/imagenet: no such folder")),
  );
  const other = new DataParallel(f1).rootFirst("opening the data", () => Promise.resolve(opened = true));
  await rejects(() => failing, /data\/imagenet: no such folder/);
  await rejects(() => other, /rank 0 failed opening the data, so rank 1 stops/);
  assertEquals(opened, false);
  assertEquals(await new DataParallel(new LocalCollective()).rootFirst("x", () => Promise.resolve(7)), 7);

  // The others' wait may outlast the collective's timeout (indexing ImageNet from a cold disk).
  const [t0, t1] = twoRanks();
  await Promise.all([
    new DataParallel(t1).rootFirst("opening the data", () => Promise.resolve(1), Infinity),
    new DataParallel(t0).rootFirst("opening the data", () => Promise.resolve(0), Infinity),
  ]);
  assertEquals(timeoutsOf(t1), [Infinity]);
});

Deno.test("CollectiveTimeoutError's advice names the timeout's field, which a command line says as its flag", () => {
  const e = new CollectiveTimeoutError(1, 2, "the all-reduce of {step} 3", 8);
  assert(e instanceof FieldMessageError);
  assert(e.describe(flagOf).startsWith("the all-reduce of {step} 3 did not complete within 8 s"), e.message);
  assert(e.describe(flagOf).endsWith("needs a larger --collective-timeout"), e.describe(flagOf));
});
