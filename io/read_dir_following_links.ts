/**
 * A directory's entries with symbolic links followed, as torchvision's `ImageFolder` does (`os.walk(followlinks=True)`
 * and `os.path.isfile`): a dataset folder of links into another disk is a common way to make a subset.
 * @module
 */
import { join } from "node:path";
import { statIfExists } from "./stat_if_exists.ts";

/** One entry: `isFile` / `isDirectory` describe what a link points to; a broken link is neither. */
export interface FollowedEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
}

/** The entries of `dir` (in the order the system lists them), links resolved with one `stat` each. */
export async function* readDirFollowingLinks(dir: string): AsyncGenerator<FollowedEntry> {
  for await (const e of Deno.readDir(dir)) {
    if (!e.isSymlink) {
      yield { name: e.name, isFile: e.isFile, isDirectory: e.isDirectory };
      continue;
    }
    const target = await statIfExists(join(dir, e.name)); // undefined for a broken link: skipped, as by isfile
    yield { name: e.name, isFile: target?.isFile ?? false, isDirectory: target?.isDirectory ?? false };
  }
}
