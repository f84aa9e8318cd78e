/**
 * A fixed set of decode workers (`batch_worker.ts`) that build batches in the background. Jobs go to the worker with
 * the fewest jobs in flight; results come back as transferred buffers. `close()` terminates every worker, so tests and
 * runs exit instead of hanging on live workers.
 * @module
 */
import { FieldMessageError } from "../io/config_error.ts";
import type { BatchJob, BatchResult, SourceSpec } from "./batch_source.ts";
import type { WorkerReply } from "./batch_worker.ts";

/** The worker script, resolved next to this module. */
export const WORKER_URL: URL = new URL("./batch_worker.ts", import.meta.url);

/**
 * True when the worker script exists as a file next to this module. It does not inside a single-file bundle
 * (`deno bundle`), where loaders fall back to building batches inline.
 */
export function workerScriptAvailable(): boolean {
  if (WORKER_URL.protocol !== "file:") return true;
  try {
    return Deno.statSync(WORKER_URL).isFile;
  } catch {
    return false;
  }
}

interface Pending {
  resolve: (result: BatchResult) => void;
  reject: (error: Error) => void;
  worker: number;
}

/** Background workers sharing a list of batch sources. */
export class WorkerPool {
  #workers: Worker[];
  #load: number[];
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  /** Starts `count` workers and hands each the `sources` (SharedArrayBuffer-backed bytes are shared, not copied). */
  constructor(sources: SourceSpec[], count: number) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`worker count must be >= 1, received ${count}`);
    this.#load = new Array(count).fill(0);
    this.#workers = Array.from({ length: count }, (_, w) => {
      const worker = new Worker(WORKER_URL, { type: "module" });
      worker.onmessage = (event: MessageEvent<WorkerReply>) => this.#reply(event.data);
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        this.#failWorker(w, new Error(`decode worker ${w} crashed: ${event.message}`));
      };
      worker.postMessage({ sources });
      return worker;
    });
  }

  /** Number of workers. */
  get size(): number {
    return this.#workers.length;
  }

  /** Builds `job` (its `id` is assigned here) on the least-loaded worker. */
  run(job: Omit<BatchJob, "id">): Promise<BatchResult> {
    if (this.#closed) return Promise.reject(new Error("the worker pool is closed"));
    const id = this.#nextId++;
    let w = 0;
    for (let i = 1; i < this.#load.length; i++) if (this.#load[i] < this.#load[w]) w = i;
    if (this.#load[w] === Number.POSITIVE_INFINITY) return Promise.reject(new Error("every decode worker crashed"));
    this.#load[w]++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker: w });
      this.#workers[w].postMessage({ job: { ...job, id } });
    });
  }

  #reply(reply: WorkerReply): void {
    const id = "result" in reply ? reply.result.id : reply.id;
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    this.#load[pending.worker]--;
    if ("result" in reply) pending.resolve(reply.result);
    else {
      const what = `decode worker ${pending.worker} failed: `;
      // A FieldMessageError (e.g. "use {decoder} js") crosses the thread as its template and stays one.
      pending.reject(
        reply.template === undefined ? new Error(what + reply.error) : new FieldMessageError(what + reply.template),
      );
    }
  }

  #failWorker(worker: number, error: Error): void {
    for (const [id, pending] of this.#pending) {
      if (pending.worker !== worker) continue;
      this.#pending.delete(id);
      pending.reject(error);
    }
    this.#load[worker] = Number.POSITIVE_INFINITY; // never pick a crashed worker again
  }

  /** Terminates all workers; jobs still in flight reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const worker of this.#workers) worker.terminate();
    const error = new Error("the worker pool was closed");
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
