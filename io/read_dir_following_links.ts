/**
 * A directory's entries with symbolic links followed, as torchvision's `ImageFolder` does (`os.walk(followlinks=True)`
 * and `os.path.isfile`): a dataset folder of links into another disk is a common way to make a subset.
 * @module
 */
import { join } from "node:path";

/** One entry: `isFile` / `isDirectory` describe what a link points to; a link that cannot be followed is neither. */
export interface FollowedEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
  /** A symbolic link whose target is missing, unreadable or a loop (skipped, as `os.path.isfile` says False). */
  unfollowed: boolean;
}

/** The entries of `dir` (in the order the system lists them), links resolved with one `stat` each. */
export async function* readDirFollowingLinks(dir: string): AsyncGenerator<FollowedEntry> {
  for await (const e of Deno.readDir(dir)) {
    if (!e.isSymlink) {
      yield { name: e.name, isFile: e.isFile, isDirectory: e.isDirectory, unfollowed: false };
      continue;
    }
    // Any failure (a missing target, a loop, no permission) makes the link neither file nor folder, as in Python.
    const target = await Deno.stat(join(dir, e.name)).catch(() => undefined);
    yield {
      name: e.name,
      isFile: target?.isFile ?? false,
      isDirectory: target?.isDirectory ?? false,
      unfollowed: target === undefined,
    };
  }
}
