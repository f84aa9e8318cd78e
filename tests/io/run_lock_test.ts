import { assert, assertEquals, rejects } from "../assert.ts";
import { acquireRunLock, LOCK_FILE, processStart, readLockHolder, RunFolderLockedError } from "../../io/run_lock.ts";
import { hostname } from "node:os";

Deno.test("run lock: one holder at a time, released on request, a dead owner's lock taken over with a message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lock = await acquireRunLock(dir);
    const held = JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`));
    assertEquals([held.pid, held.host], [Deno.pid, hostname()]);
    // A second taker (here the same process, which is alive) is refused, naming the owner's pid.
    await rejects(
      acquireRunLock(dir),
      (e: Error) => e instanceof RunFolderLockedError && e.message.includes(`process ${Deno.pid}`),
    );
    await lock.release();
    await Deno.stat(`${dir}/${LOCK_FILE}`).then(() => assert(false, "released lock still there"), () => {});

    // The lock of a process that has exited (a killed run) is taken over.
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    await child.status;
    await Deno.writeTextFile(
      `${dir}/${LOCK_FILE}`,
      JSON.stringify({ pid: child.pid, host: hostname(), since: "2026-01-01T00:00:00Z" }),
    );
    const messages: string[] = [];
    const taken = await acquireRunLock(dir, (m) => messages.push(m));
    assertEquals(messages, [`${dir}/${LOCK_FILE}: taking over the lock of process ${child.pid}, which no longer runs`]);
    await taken.release();

    // A lock from another host cannot be checked: refused. A half-written lock file is replaced.
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, JSON.stringify({ pid: 1, host: "elsewhere", since: "x" }));
    await rejects(acquireRunLock(dir), /in use by process 1 on elsewhere/);
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, '{"pid": 12');
    await (await acquireRunLock(dir, (m) => messages.push(m))).release();
    assertEquals(messages.at(-1), `${dir}/${LOCK_FILE}: unreadable lock file replaced`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLockHolder tells a live owner from a dead one and from another host's, without taking the lock", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await readLockHolder(dir), null);
    const lock = await acquireRunLock(dir);
    const live = await readLockHolder(dir);
    assertEquals([live?.owner?.pid, live?.alive], [Deno.pid, true]);
    await lock.release();
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    await child.status;
    const write = (v: unknown) => Deno.writeTextFile(`${dir}/${LOCK_FILE}`, JSON.stringify(v));
    await write({ pid: child.pid, host: hostname(), since: "2026-01-01T00:00:00Z" });
    assertEquals((await readLockHolder(dir))?.alive, false);
    await write({ pid: 1, host: `${hostname()}-elsewhere`, since: "2026-01-01T00:00:00Z" });
    assertEquals((await readLockHolder(dir))?.alive, null, "another host's process cannot be checked");
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, '{"pi');
    assertEquals(await readLockHolder(dir), { owner: null, alive: false });
    assertEquals(await Deno.readTextFile(`${dir}/${LOCK_FILE}`), '{"pi', "reading leaves the lock as it was");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run lock: of two processes taking over one stale lock at once, exactly one gets it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (let trial = 0; trial < 20; trial++) {
      const child = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
      await child.status;
      await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, JSON.stringify({ pid: child.pid, host: hostname(), since: "x" }));
      // Two takers interleaved on one event loop, as two processes interleave their file operations.
      const results = await Promise.allSettled([acquireRunLock(dir), acquireRunLock(dir)]);
      const held = results.filter((r) => r.status === "fulfilled");
      assertEquals(held.length, 1, `trial ${trial}: ${results.map((r) => r.status).join(", ")}`);
      const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      assert(refused.reason instanceof RunFolderLockedError, String(refused.reason));
      await (held[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireRunLock>>>).value.release();
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), [], "no lock or moved-aside file left");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "run lock: a dead owner whose pid a later process reuses (a restarted container) is taken over",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const mine = processStart(Deno.pid)!;
      assert(/^[0-9a-f-]+:\d+$/.test(mine), mine);
      // The lock of an earlier process that had this very pid: same pid and host, another start.
      const earlier = { pid: Deno.pid, host: hostname(), since: "2026-01-01T00:00:00Z", start: `${mine}0` };
      await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, JSON.stringify(earlier));
      assertEquals((await readLockHolder(dir))?.alive, false);
      const messages: string[] = [];
      const lock = await acquireRunLock(dir, (m) => messages.push(m));
      assertEquals(messages, [
        `${dir}/${LOCK_FILE}: taking over the lock of process ${Deno.pid}, which no longer runs (a later process has its pid)`,
      ]);
      const held = JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`));
      assertEquals(held.start, mine);
      // This process's own lock, start included, is live: refused.
      assertEquals((await readLockHolder(dir))?.alive, true);
      await rejects(acquireRunLock(dir), RunFolderLockedError);
      await lock.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
