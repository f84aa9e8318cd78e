/**
 * Streams the regular files of a `.tar` or `.tar.gz` archive (gzip recognised by its magic bytes, not the name)
 * through `tar-stream`, without extracting anything to disk.
 * @module
 */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import tarStream from "tar-stream";

/** True when the file starts with gzip's magic bytes 1f 8b. */
export async function isGzipFile(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const head = new Uint8Array(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/**
 * Calls `onFile(name, bytes)` for every regular file of the archive at `path` that `want(name)` accepts (all of them
 * without `want`), with its whole content; the others are skipped unread. `name` is the path inside the archive
 * without a leading "./".
 * @throws {Error} naming the archive when it is not a readable tar (or gzip) stream.
 */
export async function readTarFiles(
  path: string,
  onFile: (name: string, bytes: Uint8Array) => void | Promise<void>,
  want?: (name: string) => boolean,
): Promise<void> {
  const gzip = await isGzipFile(path);
  const extract = tarStream.extract();
  const input = createReadStream(path);
  const source = gzip ? input.pipe(createGunzip()) : input;
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    extract.destroy(e);
  };
  input.on("error", fail);
  source.on("error", fail);
  source.pipe(extract);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const name = header.name.replace(/^\.\//, "");
      if (header.type !== "file" || (want && !want(name))) {
        entry.resume();
        continue;
      }
      const chunks: Uint8Array[] = [];
      for await (const chunk of entry) chunks.push(chunk);
      try {
        await onFile(name, concat(chunks));
      } catch (e) {
        throw new CallbackError(e);
      }
    }
  } catch (e) {
    if (e instanceof CallbackError) throw e.error; // the caller's own error, not the archive's fault
    const cause = failure ?? (e as Error);
    throw new Error(`${path}: not a readable ${gzip ? "tar.gz" : "tar"} archive (${cause.message})`, { cause });
  } finally {
    input.destroy();
  }
  if (failure) throw new Error(`${path}: not a readable ${gzip ? "tar.gz" : "tar"} archive (${failure.message})`);
}

/** Carries an error `onFile` threw out of the stream loop unchanged. */
class CallbackError {
  constructor(readonly error: unknown) {}
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return new Uint8Array(chunks[0].buffer, chunks[0].byteOffset, chunks[0].byteLength);
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}
