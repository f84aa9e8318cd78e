/**
 * One training process per run folder: two runs writing one folder's `last.safetensors` and `metrics.jsonl` would
 * corrupt each other's record. A lock file holds the owner's pid and host; a lock left by a process that no longer
 * runs (killed, crashed) is taken over, with a message, so that `--resume auto` after a crash needs no cleanup.
 * On Linux the lock also records the owner's start time (and the boot it started in): in a container restarted after
 * a crash, the new process often gets the dead owner's pid again, and a pid alone would then read as a live owner.
 * @module
 */
import { hostname } from "node:os";
import { join } from "node:path";

/** The lock's file name inside the run folder. */
export const LOCK_FILE = "run.lock";

/** What the lock file records of its owner. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /**
   * Which process of that pid: `<boot id>:<start time in clock ticks>` from `/proc` (Linux; absent elsewhere and in
   * locks written before it existed). A live pid whose start differs is another process that reuses the pid.
   */
  start?: string;
}

/** A held lock; {@linkcode RunLock.release} removes it. */
export interface RunLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Another live process holds the run folder. */
export class RunFolderLockedError extends Error {
  constructor(readonly path: string, readonly owner: LockOwner) {
    super(
      `${path}: the run folder is in use by process ${owner.pid} on ${owner.host} (since ${owner.since}); ` +
        "two runs in one folder would overwrite each other's checkpoints and logs. Stop that run or choose another " +
        `folder; if no such process runs any more, delete ${path}`,
    );
    this.name = "RunFolderLockedError";
  }
}

/**
 * Takes the lock of run folder `dir` (which must exist) for this process.
 * @param onTakeover told when a stale lock (its process is gone) is taken over.
 * @throws {RunFolderLockedError} when a live process (or one on another host, which cannot be checked) holds it.
 */
export async function acquireRunLock(dir: string, onTakeover?: (message: string) => void): Promise<RunLock> {
  const path = join(dir, LOCK_FILE);
  const start = processStart(Deno.pid);
  const me: LockOwner = { pid: Deno.pid, host: hostname(), since: new Date().toISOString(), ...(start && { start }) };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // createNew is atomic: of two processes racing for the lock, exactly one creates the file.
      await Deno.writeTextFile(path, JSON.stringify(me) + "\n", { createNew: true });
      return { path, release: () => release(path, me) };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const owner = await readOwner(path);
    if (owner === undefined) continue; // released between our attempt and the read
    if (owner !== null && (owner.host !== me.host || isAlive(owner))) throw new RunFolderLockedError(path, owner);
    // Move the stale file aside (a rename is atomic) and check that it is the one just read: two processes taking over
    // at once could otherwise each remove the file, the second one the first one's fresh lock.
    const aside = `${path}.stale-${Deno.pid}-${crypto.randomUUID()}`;
    try {
      await Deno.rename(path, aside);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    const moved = await readOwner(aside);
    if (JSON.stringify(moved) !== JSON.stringify(owner)) {
      // Another process's fresh lock: put it back (unless yet another took the name meanwhile) and try again.
      await Deno.link(aside, path).catch(() => {});
      await Deno.remove(aside);
      continue;
    }
    await Deno.remove(aside);
    onTakeover?.(
      owner === null
        ? `${path}: unreadable lock file replaced`
        : `${path}: taking over the lock of process ${owner.pid}, which no longer runs` +
          (processStart(owner.pid) !== undefined ? ` (a later process has its pid)` : ""),
    );
  }
  throw new Error(`${path}: could not take the run folder's lock (other processes keep taking it)`);
}

/** Who holds a run folder's lock, as another process sees it (see {@linkcode readLockHolder}). */
export interface LockHolder {
  /** The recorded owner; null when the lock file holds no lock record (half-written, or not ours). */
  owner: LockOwner | null;
  /** Whether the owner still runs: true or false on this host, null on another host (it cannot be checked). */
  alive: boolean | null;
}

/**
 * The holder of run folder `dir`'s lock without taking it, for readers such as the dashboard that tell a live run
 * from a stopped one; null when the folder has no lock.
 */
export async function readLockHolder(dir: string): Promise<LockHolder | null> {
  const owner = await readOwner(join(dir, LOCK_FILE));
  if (owner === undefined) return null;
  if (owner === null) return { owner, alive: false };
  return { owner, alive: owner.host === hostname() ? isAlive(owner) : null };
}

/**
 * Removes run folder `dir`'s lock when this process holds it (a task ending on a signal, where the holder's own
 * `release()` cannot run); leaves any other lock alone. Whether it removed one.
 */
export async function releaseOwnLock(dir: string): Promise<boolean> {
  const owner = await readOwner(join(dir, LOCK_FILE)).catch(() => null);
  if (!owner || owner.pid !== Deno.pid || owner.host !== hostname()) return false;
  return await Deno.remove(join(dir, LOCK_FILE)).then(() => true, () => false);
}

/** The lock's owner; undefined when the file is gone, null when it does not hold a lock record. */
async function readOwner(path: string): Promise<LockOwner | null | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(text);
    if (Number.isInteger(v.pid) && typeof v.host === "string") {
      return { pid: v.pid, host: v.host, since: v.since, ...(typeof v.start === "string" && { start: v.start }) };
    }
  } catch { /* a half-written lock of a process killed while writing it */ }
  return null;
}

/**
 * Whether the lock's owner still runs on this host: its pid runs and, when the lock recorded the owner's start, it is
 * the same process (not a later one given the same pid, as in a restarted container).
 */
function isAlive(owner: LockOwner): boolean {
  const { pid } = owner;
  if (owner.start !== undefined) {
    const now = processStart(pid);
    if (now !== undefined || Deno.build.os === "linux") return now === owner.start;
  }
  if (pid === Deno.pid) return true;
  if (Deno.build.os === "linux") {
    try {
      Deno.statSync(`/proc/${pid}`);
      return true;
    } catch {
      return false;
    }
  }
  try {
    Deno.kill(pid, "SIGCONT"); // no effect on a running process; fails when there is none
    return true;
  } catch {
    return false;
  }
}

/**
 * `<boot id>:<start time>` of process `pid` from Linux's `/proc` (field 22 of `/proc/<pid>/stat`, clock ticks after
 * boot), which tells two processes of one pid apart; undefined when there is no such process or no `/proc`.
 */
export function processStart(pid: number): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")"; the fields after
    // it start at field 3, so field 22 is index 19.
    const starttime = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    const boot = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
    return starttime && /^\d+$/.test(starttime) ? `${boot}:${starttime}` : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the lock if it is still ours (a takeover by another process is not undone). */
async function release(path: string, me: LockOwner): Promise<void> {
  const owner = await readOwner(path);
  if (owner && owner.pid === me.pid && owner.host === me.host && owner.since === me.since) await Deno.remove(path);
}
