/**
 * `Deno.stat` that answers "absent" with undefined instead of an exception, for the many "is it there?" checks of
 * dataset discovery.
 * @module
 */

/** The file info of `path`, or undefined when nothing exists there (other errors still throw). */
export async function statIfExists(path: string | URL): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}
