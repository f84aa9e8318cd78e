/**
 * What data-parallel training needs from its ranks: sums of host buffers across every process, a broadcast, a
 * gather, each bounded by a timeout. {@linkcode LocalCollective} is the one-process case (no library loaded); the
 * MPI implementation is in `mpi_collective.ts`.
 * @module
 */
import { FieldMessageError, literal } from "../io/config_error.ts";

/** Collective operations across the `size` processes of one training job; every rank calls them in the same order. */
export interface Collective {
  /** This process's index, 0..size-1; rank 0 writes the logs and checkpoints. */
  readonly rank: number;
  /** Number of processes. */
  readonly size: number;
  /** Where the operations come from, for messages: "single process" or e.g. "Open MPI (libmpi.so.40)". */
  readonly description: string;
  /**
   * Replaces `data` on every rank by the element-wise sum over ranks (same length on every rank).
   * @throws {CollectiveTimeoutError} when another rank does not join within the timeout.
   */
  allReduceSum(data: Float32Array | Float64Array, what: string): Promise<void>;
  /**
   * Copies rank `root`'s `data` into every rank's `data` (same length everywhere). `timeoutSeconds` replaces the
   * collective's timeout for this call; `Infinity` waits as long as `root` takes (a rank that dies still ends the job
   * through the launcher).
   */
  broadcast(data: Uint8Array, root: number, what: string, timeoutSeconds?: number): Promise<void>;
  /** Every rank's `data` (same length everywhere), in rank order. */
  allGather(data: Uint8Array, what: string): Promise<Uint8Array[]>;
  /** Ends the job on every rank at once (after a fatal error on this one); never returns. */
  abort(code: number): never;
  /** Leaves the job cleanly; call once, after the last operation. */
  finalize(): void;
}

/** A rank waited longer than the collective timeout: another rank died, hung or took another path. */
export class CollectiveTimeoutError extends FieldMessageError {
  /**
   * @param what the operation, e.g. "the gradient all-reduce of step 12" (the message leaves out `rank`: the task's
   *   error line names it); `seconds` the timeout that expired.
   */
  constructor(readonly rank: number, readonly size: number, what: string, seconds: number) {
    super(
      `${literal(what)} did not complete within ${seconds} s: another rank died, hung or stopped ` +
        "early (see its output). A rank that is merely slow (e.g. rank 0 evaluating) " +
        "needs a larger {collectiveTimeout}",
    );
    this.name = "CollectiveTimeoutError";
  }
}

/** The single-process {@linkcode Collective}: every operation is the identity; no MPI library is loaded. */
export class LocalCollective implements Collective {
  readonly rank = 0;
  readonly size = 1;
  readonly description = "single process";
  allReduceSum(_data: Float32Array | Float64Array, _what: string): Promise<void> {
    return Promise.resolve();
  }
  broadcast(_data: Uint8Array, root: number, _what: string): Promise<void> {
    if (root !== 0) return Promise.reject(new RangeError(`broadcast: root ${root} of a single process`));
    return Promise.resolve();
  }
  allGather(data: Uint8Array, _what: string): Promise<Uint8Array[]> {
    return Promise.resolve([data.slice()]);
  }
  abort(code: number): never {
    Deno.exit(code);
  }
  finalize(): void {}
}
