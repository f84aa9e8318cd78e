/**
 * Finds a CIFAR release under a data directory and, on first use, downloads the official archive: md5-verified and
 * written atomically (a temporary file renamed into place), so an interrupted download never looks complete.
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { CifarLayout, CifarSource } from "./cifar_binary.ts";
import { FieldMessageError, literal } from "../io/config_error.ts";
import { statIfExists } from "../io/stat_if_exists.ts";

/** Options of {@linkcode locateCifar}. */
export interface LocateOptions {
  /** Download the archive when it is absent (default true). */
  download?: boolean;
  /** Check the md5 of an archive that is already present (default false; downloads are always checked). */
  verifyExisting?: boolean;
  /** Replaces the official URL (tests, mirrors). */
  url?: string;
  /** Replaces the global `fetch` (tests). */
  fetch?: typeof fetch;
  /** Progress messages (the library never prints). */
  onProgress?: (message: string) => void;
}

/** The md5 of the file at `path`, hex. */
export async function md5File(path: string): Promise<string> {
  const hash = createHash("md5");
  const file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk); // the stream closes the file at its end
  return hash.digest("hex");
}

/** Where to put the data by hand, as a {@linkcode FieldMessageError} template (it names the `dataset` field). */
function placeHint(layout: CifarLayout, dataDir: string): string {
  return literal(
    `Place ${layout.archive} (md5 ${layout.md5}, from ${layout.url}) at ${join(dataDir, layout.archive)}, or ` +
      `its extracted ${layout.directory}/ directory at ${join(dataDir, layout.directory)}; `,
  ) + "{dataset} synthetic works offline.";
}

/**
 * Where `layout`'s data lives under `dataDir`: the extracted directory if present, else the archive, downloading it
 * first when allowed.
 * @throws {Error} when the data is absent and cannot be downloaded (the message says which file to place where and
 * that the synthetic dataset works offline), or when an archive's md5 is wrong.
 */
export async function locateCifar(
  layout: CifarLayout,
  dataDir: string,
  options: LocateOptions = {},
): Promise<CifarSource> {
  const directory = join(dataDir, layout.directory);
  if ((await statIfExists(directory))?.isDirectory) return { kind: "directory", path: directory };
  const archive = join(dataDir, layout.archive);
  if ((await statIfExists(archive))?.isFile) {
    if (options.verifyExisting) {
      const md5 = await md5File(archive);
      if (md5 !== layout.md5) {
        throw new FieldMessageError(
          `${literal(archive)}: md5 ${md5}, expected ${layout.md5} (incomplete or altered download). Delete it to ` +
            `download it again. ${placeHint(layout, dataDir)}`,
        );
      }
    }
    return { kind: "archive", path: archive };
  }
  if (options.download === false) {
    throw new FieldMessageError(
      `${layout.dataset} not found under ${literal(dataDir)} and download is off. ${placeHint(layout, dataDir)}`,
    );
  }
  await downloadArchive(layout, archive, options);
  return { kind: "archive", path: archive };
}

async function downloadArchive(layout: CifarLayout, archive: string, options: LocateOptions): Promise<void> {
  const url = options.url ?? layout.url;
  const fetcher = options.fetch ?? fetch;
  const dataDir = join(archive, "..");
  let response: Response;
  try {
    response = await fetcher(url);
  } catch (e) {
    const why = literal(`Could not download ${url} (${(e as Error).message}). `);
    throw new FieldMessageError(why + placeHint(layout, dataDir), { cause: e });
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new FieldMessageError(
      `${literal(`Could not download ${url} (HTTP ${response.status}).`)} ${placeHint(layout, dataDir)}`,
    );
  }
  await Deno.mkdir(dataDir, { recursive: true });
  const partial = `${archive}.partial-${Deno.pid}`;
  const hash = createHash("md5");
  const total = Number(response.headers.get("content-length") ?? 0);
  let received = 0, reported = 0;
  try {
    const file = await Deno.open(partial, { write: true, create: true, truncate: true });
    // pipeTo closes the file, also on error.
    await response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          hash.update(chunk);
          received += chunk.length;
          if (options.onProgress && received - reported >= 16 << 20) {
            reported = received;
            options.onProgress(
              `${layout.archive}: ${(received / 1048576).toFixed(0)} MiB` +
                (total ? ` of ${(total / 1048576).toFixed(0)} MiB` : ""),
            );
          }
          controller.enqueue(chunk);
        },
      }),
    ).pipeTo(file.writable);
    const md5 = hash.digest("hex");
    if (md5 !== layout.md5) {
      throw new FieldMessageError(
        `${literal(url)}: downloaded ${received} bytes with md5 ${md5}, expected ${layout.md5}; nothing was kept. ` +
          placeHint(layout, dataDir),
      );
    }
    await Deno.rename(partial, archive);
    options.onProgress?.(`${layout.archive}: ${received} bytes, md5 ok, saved to ${archive}`);
  } catch (e) {
    await Deno.remove(partial).catch(() => {});
    throw e;
  }
}
