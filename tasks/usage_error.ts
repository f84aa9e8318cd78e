/**
 * The one error type for a bad command line (unknown flag, bad value, contradiction). Entry points print its message
 * and exit with status 2 (see `runTask` in `args.ts`).
 * @module
 */

/** A bad command line; `flag` names the flag at fault (e.g. "--lr") when there is one. */
export class UsageError extends Error {
  /** The flag at fault, e.g. "--lr", when there is one. */
  readonly flag?: string;
  constructor(message: string, flag?: string) {
    super(message);
    this.name = "UsageError";
    this.flag = flag;
  }
}
