/**
 * The run folder (`out`) at the start and the failed end of a run: creating it with an error that names the field, and
 * removing it again when a run that created it failed before writing anything.
 * @module
 */
import { ConfigError, literal } from "../io/config_error.ts";
import { statIfExists } from "../io/stat_if_exists.ts";

/**
 * Creates run folder `out` (and its parents) unless it exists; returns whether it did, so that a run that fails before
 * writing anything can remove it again ({@linkcode removeEmptyRunFolder}).
 * @throws {ConfigError} on field `out` when it cannot be created (a read-only file system, no permission).
 */
export async function makeRunFolder(out: string): Promise<boolean> {
  if (await statIfExists(out)) return false;
  try {
    await Deno.mkdir(out, { recursive: true });
  } catch (e) {
    // Deno says "Read-only file system (os error 30): mkdir '/x/run'": the reason without the number and the call.
    const message = e instanceof Error ? e.message : String(e);
    const reason = /^(.*?) \(os error \d+\)/.exec(message)?.[1] ?? message;
    throw new ConfigError("out", `{out} ${literal(out)}: cannot create the run folder (${literal(reason)})`);
  }
  return true;
}

/** Removes run folder `out` if it is empty (a failed start that wrote nothing), leaving anything else as it is. */
export async function removeEmptyRunFolder(out: string): Promise<void> {
  try {
    await Deno.remove(out); // not recursive: fails on a folder that holds anything
  } catch { /* not empty, or gone: nothing to undo */ }
}
