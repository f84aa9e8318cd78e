/**
 * {@linkcode Collective} over MPI: non-blocking collectives (MPI_Iallreduce, MPI_Ibcast, MPI_Iallgather) polled with
 * MPI_Test until they complete or the timeout expires, so a rank whose peer died or hung stops with a message instead
 * of waiting forever, and the event loop (the data loader's workers) keeps running while a collective is in flight.
 * @module
 */
import { type Collective, CollectiveTimeoutError } from "./collective.ts";
import { type MpiLibrary, openMpiLibrary } from "./mpi_library.ts";

const MPI_THREAD_FUNNELED = 1; // every MPI call comes from the main thread

/** Options of {@linkcode MpiCollective.init}. */
export interface MpiCollectiveOptions {
  /** Seconds a collective may wait for the other ranks before {@linkcode CollectiveTimeoutError}. */
  timeoutSeconds: number;
  /** Sonames to try (default {@linkcode MPI_LIBRARY_NAMES}). */
  libraryNames?: readonly string[];
}

/**
 * An initialised MPI job (MPI_COMM_WORLD). Buffers handed to MPI are copied into memory this class owns (a fresh
 * ArrayBuffer never lives on V8's moving heap), so a collective in flight never sees a buffer move or be collected.
 */
export class MpiCollective implements Collective {
  readonly rank: number;
  readonly size: number;
  readonly description: string;
  readonly #lib: MpiLibrary;
  readonly #timeoutMs: number;
  #scratch = new ArrayBuffer(0);
  #finalized = false;

  private constructor(lib: MpiLibrary, rank: number, size: number, timeoutSeconds: number) {
    this.#lib = lib;
    this.rank = rank;
    this.size = size;
    this.#timeoutMs = timeoutSeconds * 1000;
    this.description = `${lib.flavour} (${lib.soname})`;
  }

  /**
   * Loads the library and calls MPI_Init_thread (funneled), MPI_Comm_rank and MPI_Comm_size.
   * @throws {Error} for a library that does not load or an MPI call that fails, naming it.
   */
  static init(options: MpiCollectiveOptions): MpiCollective {
    if (!(options.timeoutSeconds > 0)) {
      throw new RangeError(`timeoutSeconds must be > 0, got ${options.timeoutSeconds}`);
    }
    const lib = openMpiLibrary(options.libraryNames);
    const provided = new Int32Array(new ArrayBuffer(4));
    check(lib, lib.fn.MPI_Init_thread(null, null, MPI_THREAD_FUNNELED, provided), "MPI_Init_thread");
    const out = new Int32Array(new ArrayBuffer(4));
    check(lib, lib.fn.MPI_Comm_rank(lib.handles.commWorld, out), "MPI_Comm_rank");
    const rank = out[0];
    check(lib, lib.fn.MPI_Comm_size(lib.handles.commWorld, out), "MPI_Comm_size");
    return new MpiCollective(lib, rank, out[0], options.timeoutSeconds);
  }

  async allReduceSum(data: Float32Array | Float64Array, what: string): Promise<void> {
    const buffer = this.#stage(data);
    const type = data instanceof Float32Array ? this.#lib.handles.float : this.#lib.handles.double;
    await this.#run(what, (request) =>
      this.#lib.fn.MPI_Iallreduce(
        this.#lib.handles.inPlace,
        buffer,
        data.length,
        type,
        this.#lib.handles.sum,
        this.#lib.handles.commWorld,
        request,
      ), "MPI_Iallreduce");
    if (buffer !== data) data.set(buffer);
  }

  async broadcast(data: Uint8Array, root: number, what: string, timeoutSeconds?: number): Promise<void> {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) {
      throw new RangeError(`broadcast: root must be a rank in [0, ${this.size - 1}], got ${root}`);
    }
    const buffer = this.#stage(data);
    const { byte, commWorld } = this.#lib.handles;
    await this.#run(
      what,
      (request) => this.#lib.fn.MPI_Ibcast(buffer, data.length, byte, root, commWorld, request),
      "MPI_Ibcast",
      timeoutSeconds,
    );
    if (buffer !== data) data.set(buffer);
  }

  async allGather(data: Uint8Array, what: string): Promise<Uint8Array[]> {
    const send = new Uint8Array(new ArrayBuffer(data.length));
    send.set(data);
    const receive = new Uint8Array(new ArrayBuffer(data.length * this.size));
    const { byte, commWorld } = this.#lib.handles;
    await this.#run(
      what,
      (request) => this.#lib.fn.MPI_Iallgather(send, data.length, byte, receive, data.length, byte, commWorld, request),
      "MPI_Iallgather",
    );
    return Array.from({ length: this.size }, (_, r) => receive.slice(r * data.length, (r + 1) * data.length));
  }

  abort(code: number): never {
    this.#lib.fn.MPI_Abort(this.#lib.handles.commWorld, code);
    Deno.exit(code); // MPI_Abort does not return; in case the library's does
  }

  finalize(): void {
    if (this.#finalized) return;
    this.#finalized = true;
    check(this.#lib, this.#lib.fn.MPI_Finalize(), "MPI_Finalize");
  }

  /**
   * `data` itself when V8 keeps it off its moving heap (V8 places only typed arrays of at most 64 bytes on it; a
   * gradient buffer is megabytes, and a copy of 45 MB costs ~12 ms here), else a copy in memory owned here (reused:
   * one collective at a time), same element type. The caller holds `data` until the operation completes.
   */
  #stage<T extends Float32Array | Float64Array | Uint8Array>(data: T): T {
    if (data.byteLength > 4096) return data;
    if (this.#scratch.byteLength < data.byteLength) this.#scratch = new ArrayBuffer(data.byteLength);
    const ctor = data.constructor as { new (b: ArrayBuffer, o: number, n: number): T };
    const view = new ctor(this.#scratch, 0, data.length);
    view.set(data);
    return view;
  }

  /** Starts a non-blocking operation and polls MPI_Test (which also drives its progress) until done or timed out. */
  async #run(
    what: string,
    start: (request: Uint8Array) => number,
    name: string,
    timeoutSeconds?: number,
  ): Promise<void> {
    const timeoutMs = timeoutSeconds === undefined ? this.#timeoutMs : timeoutSeconds * 1000;
    if (this.#finalized) throw new Error(`${what}: MPI was already finalized`);
    const request = new Uint8Array(new ArrayBuffer(this.#lib.requestBytes));
    check(this.#lib, start(request), name);
    const flag = new Int32Array(new ArrayBuffer(4));
    const started = performance.now();
    // Open MPI advances a non-blocking collective only inside MPI calls, so poll without sleeping, as a blocking
    // MPI_Allreduce spins, but let the event loop run every 20 ms (the data loader's workers deliver batches
    // meanwhile; a yield costs ~2 ms without progress, so more often slows the all-reduce). After a second of waiting
    // (a slow peer: rank 0 evaluating) poll every millisecond instead of holding a core.
    let yielded = started;
    for (;;) {
      check(this.#lib, this.#lib.fn.MPI_Test(request, flag, null), "MPI_Test");
      if (flag[0] !== 0) return;
      const now = performance.now();
      const waited = now - started;
      if (waited > timeoutMs) {
        throw new CollectiveTimeoutError(this.rank, this.size, what, timeoutMs / 1000);
      }
      if (waited > 1000 || now - yielded > 20) {
        await new Promise((r) => setTimeout(r, waited > 1000 ? 1 : 0));
        yielded = performance.now();
      }
    }
  }
}

function check(lib: MpiLibrary, code: number, call: string): void {
  // MPI_ERRORS_ARE_FATAL is the default handler, so a failing call usually aborts the job before this.
  if (code !== 0) throw new Error(`${call} failed with MPI error code ${code} (${lib.flavour}, ${lib.soname})`);
}
