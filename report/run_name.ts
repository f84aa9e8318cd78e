/**
 * The one rule for naming a run folder from outside (a URL, a command line): a single path segment of plain
 * characters. It is what keeps `/api/runs/../../etc`, its percent-encoded forms and backslash variants from reaching
 * anything but a folder directly under the runs folder; callers check the name after decoding, before any file access.
 * @module
 */

/** Letters, digits, `_`, `-`, `.` and `+`, not starting with `.` (so never `.` or `..`), at most 200 characters. */
const RUN_NAME = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,199}$/;

/** Whether `name` may name a run folder under the runs folder (see the module documentation). */
export function isRunName(name: string): boolean {
  return RUN_NAME.test(name);
}
