/**
 * The up-front check of an output path given on a command line (`--out-json`, `--save-logits`, export's `--out`), so
 * that a missing folder is a usage error naming the flag before the work, not an OS error about a temporary file after.
 * @module
 */
import { dirname } from "node:path";
import { UsageError } from "./args.ts";
import { statIfExists } from "../io/stat_if_exists.ts";

/**
 * Checks, before minutes of work (an evaluation, an export), that `path` (the value of `flag`) can be written: its folder exists and
 * takes a new file (one is made and removed at once), and `path` is no folder.
 * @throws {UsageError} naming the flag.
 */
export async function checkOutputPath(path: string, flag: string): Promise<void> {
  const folder = dirname(path);
  const bad = (why: string): never => {
    throw new UsageError(`${flag} ${path}: ${why}`, flag);
  };
  const info = await statIfExists(folder);
  if (!info) bad(`the folder ${folder} does not exist`);
  if (!info!.isDirectory) bad(`${folder} is not a folder`);
  if ((await statIfExists(path))?.isDirectory) bad("is a folder; expected a file name");
  try {
    await Deno.remove(await Deno.makeTempFile({ dir: folder, prefix: ".write-check-" }));
  } catch (e) {
    bad(`cannot write in ${folder}: ${(e as Error).message}`);
  }
}
