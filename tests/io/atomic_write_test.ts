/**
 * Durability of atomicWriteFile, seen through the calls it makes: data fsynced before the rename, the folder fsynced
 * after it. A crash test cannot see a missing fsync (the page cache survives a killed process), so these tests record
 * the file-system calls instead, and fail when either fsync is removed or moved.
 * @module
 */
import { assertEquals, rejects } from "../assert.ts";
import { atomicWriteFile } from "../../io/atomic_write.ts";

type Event = string;

/** Runs `fn` with Deno.open, FsFile.sync and Deno.rename recording what they are called on; restores them after. */
async function recording(fn: () => Promise<void>, failDirSync?: string): Promise<Event[]> {
  const events: Event[] = [];
  const opened = new WeakMap<Deno.FsFile, { path: string; folder: boolean }>();
  const open = Deno.open, rename = Deno.rename, sync = Deno.FsFile.prototype.sync;
  const name = (p: string | URL) => String(p).replace(/\.tmp-[0-9a-f]+$/, ".tmp");
  const deno = Deno as { open: typeof Deno.open; rename: typeof Deno.rename };
  deno.open = async (path, options) => {
    const file = await open(path, options);
    opened.set(file, { path: name(path), folder: (await Deno.stat(path)).isDirectory });
    return file;
  };
  deno.rename = async (from, to) => {
    events.push(`rename ${name(from)} -> ${name(to)}`);
    await rename(from, to);
  };
  Deno.FsFile.prototype.sync = async function (this: Deno.FsFile) {
    const { path, folder } = opened.get(this)!;
    if (failDirSync && folder) {
      throw Object.assign(new Error(`injected ${failDirSync}`), { code: failDirSync });
    }
    events.push(`sync ${path}`);
    await sync.call(this);
  };
  try {
    await fn();
  } finally {
    deno.open = open;
    deno.rename = rename;
    Deno.FsFile.prototype.sync = sync;
  }
  return events;
}

Deno.test("atomicWriteFile fsyncs the data before the rename and the folder after it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const events = await recording(() => atomicWriteFile(`${dir}/f.bin`, new Uint8Array([1, 2, 3])));
    assertEquals(events, [`sync ${dir}/f.bin.tmp`, `rename ${dir}/f.bin.tmp -> ${dir}/f.bin`, `sync ${dir}`]);
    assertEquals(await Deno.readFile(`${dir}/f.bin`), new Uint8Array([1, 2, 3]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a folder fsync that fails is an error unless the file system cannot sync folders", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // EINVAL: the file system does not support fsync on a folder (some network and FUSE file systems): ignored.
    await recording(() => atomicWriteFile(`${dir}/a.bin`, new Uint8Array([1])), "EINVAL");
    // EBADF or EIO is a real failure: the rename may not survive a power loss, and the caller must know.
    for (const code of ["EBADF", "EIO"]) {
      await recording(
        () =>
          rejects(atomicWriteFile(`${dir}/b.bin`, new Uint8Array([1])), new RegExp(`fsync of folder ${dir} failed`)),
        code,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
