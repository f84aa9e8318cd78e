/**
 * `deno task prepare --dataset cifar10|cifar100 [--data-dir data]`: downloads the official CIFAR binary archive
 * (md5-verified, written atomically) unless it or its extracted directory is already there, checks the md5 of an
 * archive found in place, then reads every file once with the strict validation the loaders use.
 *
 * `deno task prepare --dataset imagenet --data-dir DIR [--skip-decode-check]`: finds which layout DIR holds, indexes
 * it (writing the index file of the official archives), compares the counts with the full ILSVRC-2012 set, says what
 * is missing, and decodes every image as evaluation does to list the files that do not decode.
 * @module
 */
import { errorText, parseArgs } from "./args.ts";
import { cifarLayout, readCifar } from "../data/cifar_binary.ts";
import { locateCifar } from "../data/cifar_download.ts";
import { IMAGENET_COUNTS, indexImageNet } from "../data/imagenet_dataset.ts";
import { checkDecodes } from "../data/decode_check.ts";

const USAGE = "usage: deno task prepare --dataset cifar10|cifar100 [--data-dir data]\n" +
  "       deno task prepare --dataset imagenet --data-dir DIR [--skip-decode-check]";

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
  let values: { dataset?: string; "data-dir"?: string; "skip-decode-check"?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        dataset: { type: "string" },
        "data-dir": { type: "string", default: "data" },
        "skip-decode-check": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    io.error(`error: ${(e as Error).message}\n${USAGE}`);
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
  if (dataset === "imagenet") return await prepareImageNet(values["data-dir"]!, !values["skip-decode-check"], io);
  if (values["skip-decode-check"]) {
    io.error(`error: --skip-decode-check applies to --dataset imagenet only\n${USAGE}`);
    return 2;
  }
  if (dataset !== "cifar10" && dataset !== "cifar100") {
    io.error(
      `error: --dataset must be cifar10, cifar100 or imagenet, received ${JSON.stringify(dataset ?? null)}\n${USAGE}`,
    );
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
    io.error(`error: ${errorText(e)}`);
    return 1;
  }
}

const count = (n: number) => n.toLocaleString("en-US");

/** The ImageNet half of {@linkcode runPrepare}. */
async function prepareImageNet(dir: string, decode: boolean, io: PrepareIO): Promise<number> {
  try {
    const started = performance.now();
    const index = await indexImageNet(dir);
    const seconds = (performance.now() - started) / 1000;
    const [train, val, classes] = [index.train.labels.length, index.test.labels.length, index.classNames.length];
    io.log(`prepare: imagenet at ${dir}: ${index.layout} layout, indexed in ${seconds.toFixed(2)} s`);
    if (index.indexFile) {
      const { path, reused } = index.indexFile;
      io.log(
        path === null
          ? "prepare: warning: no index file could be written (neither the folder nor the cache folder is writable)"
          : `prepare: index file ${path} ${reused ? "reused (the archives have not changed)" : "written"}`,
      );
    }
    for (const note of index.notes) io.log(`prepare: warning: ${note}`);
    io.log(`prepare: ${count(train)} training and ${count(val)} validation images in ${count(classes)} classes`);
    const full = IMAGENET_COUNTS;
    if (train !== full.train || val !== full.val || classes !== full.classes) {
      io.log(
        `prepare: warning: these counts differ from the full ILSVRC-2012 set (${count(full.train)} training and ` +
          `${count(full.val)} validation images in ${count(full.classes)} classes)`,
      );
    }
    for (const [name, split] of [["training", index.train], ["validation", index.test]] as const) {
      const perClass = new Int32Array(classes);
      for (const l of split.labels) perClass[l]++;
      const empty = index.wnids.filter((_, i) => perClass[i] === 0);
      if (empty.length > 0 && split.labels.length > 0) {
        const shown = empty.slice(0, 10).join(", ") + (empty.length > 10 ? `, ... (${empty.length} in all)` : "");
        io.log(`prepare: warning: ${empty.length} classes have no ${name} images: ${shown}`);
      }
    }
    if (!decode) {
      io.log("prepare: decode check skipped (--skip-decode-check)");
      return 0;
    }
    let failed = 0;
    for (const [name, split] of [["training", index.train], ["validation", index.test]] as const) {
      const check = await checkDecodes(split, {
        onProgress: (done, total) => io.log(`prepare: decoding ${name} images: ${count(done)} / ${count(total)}`),
      });
      const rate = check.images / Math.max(check.seconds, 1e-9);
      io.log(
        `prepare: decoded ${count(check.images)} ${name} images (${(check.bytes / 1e6).toFixed(1)} MB) in ` +
          `${check.seconds.toFixed(2)} s: ${rate.toFixed(0)} images/s with ${navigator.hardwareConcurrency} ` +
          "decodes in flight (Resize + CenterCrop 224, as evaluation)",
      );
      for (const f of check.failures) io.log(`prepare: warning: does not decode: ${f.name}: ${f.message}`);
      failed += check.failures.length;
    }
    // What createLoaders tolerates by default before it stops a run (DataConfig.maxSkippedImages).
    const limit = Math.max(10, Math.ceil(train / 1000));
    if (failed > limit) {
      io.error(`error: ${failed} images do not decode, more than a run skips by default (${limit})`);
      return 1;
    }
    io.log(`prepare: imagenet ready at ${dir}${failed > 0 ? ` (${failed} images will be skipped)` : ""}`);
    return 0;
  } catch (e) {
    io.error(`error: ${errorText(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await runPrepare(Deno.args));
