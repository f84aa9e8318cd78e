/**
 * Crash-safe file replacement: a reader (or a resumed run) sees either the old file or the complete new one, never a
 * half-written file, whatever point a crash or a kill happens at.
 * @module
 */

/** What {@linkcode atomicWriteFile} writes: one buffer, or chunks (so a large file need not be concatenated first). */
export type FileChunks = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** POSIX error codes meaning "this file system cannot fsync a directory": safe to ignore, nothing else is. */
const DIR_SYNC_UNSUPPORTED = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EISDIR"]);

/**
 * Replaces `path` atomically with `data`: writes `path.tmp-<random>` in the same folder (a rename is only atomic
 * within one file system), fsyncs it, renames it over `path`, then fsyncs the folder so the rename itself survives a
 * power loss. On any failure before the rename the temporary file is removed and the old `path`, if any, is left as
 * it was; the error is rethrown with `path` in its message.
 *
 * Directory fsync is skipped on Windows (a directory cannot be opened there) and ignored where the file system
 * reports it unsupported (EINVAL/ENOTSUP-style errors).
 */
export async function atomicWriteFile(path: string, data: FileChunks): Promise<void> {
  const tmp = `${path}.tmp-${randomSuffix()}`;
  let file: Deno.FsFile | undefined;
  try {
    // createNew: never follow or clobber a file someone else put at the temporary name.
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    for await (const chunk of chunks(data)) await writeAll(file, chunk);
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {/* never created, or already renamed */});
    throw new Error(`atomic write of ${path} failed, the previous file (if any) is untouched: ${message(err)}`, {
      cause: err,
    });
  }
  // Imported here, not at the top: the browser page bundles io/checkpoint.ts (which writes through this module) and
  // a browser has no node:path; it never writes files.
  const { dirname } = await import("node:path");
  await syncDirectory(dirname(path));
}

/** Fsyncs a directory so that a rename inside it is durable; a no-op where directories cannot be synced. */
export async function syncDirectory(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === undefined || !DIR_SYNC_UNSUPPORTED.has(code)) {
      throw new Error(`fsync of folder ${dir} failed: ${message(err)}`, { cause: err });
    }
  } finally {
    handle?.close();
  }
}

async function* chunks(data: FileChunks): AsyncIterable<Uint8Array> {
  if (data instanceof Uint8Array) yield data;
  else yield* data;
}

/** `FsFile.write` may write fewer bytes than asked; loop until the chunk is written. */
async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.length) done += await file.write(chunk.subarray(done));
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
