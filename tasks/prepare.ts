/**
 * `deno task prepare --dataset cifar10|cifar100 [--data-dir data]`: downloads the official CIFAR binary archive
 * (md5-verified, written atomically) unless it or its extracted directory is already there, checks the md5 of an
 * archive found in place, then reads every file once with the strict validation the loaders use.
 * @module
 */
import { parseArgs } from "./args.ts";
import { cifarLayout, readCifar } from "../data/cifar_binary.ts";
import { locateCifar } from "../data/cifar_download.ts";

const USAGE = "usage: deno task prepare --dataset cifar10|cifar100 [--data-dir data]";

/** Where {@linkcode runPrepare} writes and what it may replace (tests inject these). */
export interface PrepareIO {
  log: (line: string) => void;
  error: (line: string) => void;
  fetch?: typeof fetch;
  /** Replaces the official URL (tests, mirrors). */
  url?: string;
}

/** Runs the prepare task on `args`; returns the exit code (0 ok, 1 failure, 2 bad usage). */
export async function runPrepare(
  args: string[],
  io: PrepareIO = { log: console.log, error: console.error },
): Promise<number> {
  let values: { dataset?: string; "data-dir"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        dataset: { type: "string" },
        "data-dir": { type: "string", default: "data" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.error(`prepare: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.log(USAGE);
    return 0;
  }
  const dataset = values.dataset;
  if (dataset === "synthetic") {
    io.log("prepare: --dataset synthetic is generated in memory; nothing to download");
    return 0;
  }
  if (dataset !== "cifar10" && dataset !== "cifar100") {
    io.error(`prepare: --dataset must be cifar10 or cifar100, received ${JSON.stringify(dataset ?? null)}\n${USAGE}`);
    return 2;
  }
  const layout = cifarLayout(dataset);
  const dataDir = values["data-dir"]!;
  try {
    const source = await locateCifar(layout, dataDir, {
      verifyExisting: true,
      fetch: io.fetch,
      url: io.url,
      onProgress: io.log,
    });
    const { train, test } = await readCifar(layout, source);
    io.log(`prepare: ${dataset} ready at ${source.path} (${train.count} train, ${test.count} test records validated)`);
    return 0;
  } catch (e) {
    io.error(`prepare: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runPrepare(Deno.args));
