/**
 * Decode worker: receives its sources once (`{ sources }`), then builds batches (`{ job }`) and sends each back with
 * its float buffer transferred, not copied. Errors are reported per job so the pool can fail the right batch.
 * @module
 */
/// <reference lib="deno.worker" />
import { FieldMessageError } from "../io/config_error.ts";
import { type BatchJob, type BatchResult, createBatchMaker, type SourceSpec } from "./batch_source.ts";

/** Messages the pool sends to a worker. */
export type WorkerRequest = { sources: SourceSpec[] } | { job: BatchJob };
/** Messages a worker sends back. */
export type WorkerReply = { result: BatchResult } | {
  id: number;
  error: string;
  /** A FieldMessageError's template (its `{field}`s name config fields), for the main thread to rebuild it. */
  template?: string;
};

let makers: ((job: BatchJob) => Promise<BatchResult>)[] = [];

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const message = event.data;
  if ("sources" in message) {
    makers = message.sources.map(createBatchMaker);
    return;
  }
  const job = message.job;
  try {
    const result = await makers[job.source](job);
    self.postMessage({ result } satisfies WorkerReply, [
      result.images.buffer as ArrayBuffer,
      result.labels.buffer as ArrayBuffer,
    ]);
  } catch (e) {
    const template = e instanceof FieldMessageError ? e.template : undefined;
    self.postMessage({ id: job.id, error: (e as Error).stack ?? String(e), template } satisfies WorkerReply);
  }
};
