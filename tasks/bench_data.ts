/**
 * Prints the input pipelines' throughput on this machine (`deno run -A tasks/bench_data.ts [--workers N]
 * [--cifar-images N] [--imagenet-images N]`, also `deno task bench --data`). Each pipeline is
 * timed inline (workers 0) and with background workers.
 * @module
 */
import { intFlag, parseArgs } from "./args.ts";
import { benchCifarPipeline, benchImagenetPipeline, type PipelineThroughput } from "../bench/pipeline_bench.ts";
import type { ImageAugmentation } from "../data/image_augmentation.ts";

/** The CIFAR pipelines timed: the reference recipe's, and with AutoAugment's CIFAR-10 policy. */
const CIFAR_VARIANTS: [string, Partial<ImageAugmentation>][] = [
  ["CIFAR train (crop pad 4 + flip + normalise)", {}],
  ["CIFAR train + AutoAugment cifar10", { autoAugment: "cifar10" }],
];

/** The ImageNet pipelines timed: the classic recipe's, and the new recipe's TrivialAugmentWide + RandomErasing. */
const IMAGENET_VARIANTS: [string, Partial<ImageAugmentation>][] = [
  ["ImageNet train (500x375 q90 JPEG, RRC 224)", {}],
  ["ImageNet train + TrivialAugmentWide + erase 0.1", { autoAugment: "ta_wide", randomErase: 0.1 }],
];

const USAGE = "usage: deno run -A tasks/bench_data.ts [--workers N] [--cifar-images N] [--imagenet-images N]";

function line(name: string, r: PipelineThroughput, extra = ""): string {
  return `${name.padEnd(48)} ${r.imagesPerSecond.toFixed(0).padStart(8)} img/s  ` +
    `${r.imagesPerCpuSecond.toFixed(0).padStart(8)} img/CPU-s  (workers ${r.workers}, ${r.images} images in ` +
    `${r.seconds.toFixed(2)} s using ${r.cpuSeconds.toFixed(2)} CPU-s${extra})`;
}

/** Runs both benchmarks and prints one line per configuration; returns the exit code. */
export async function runBenchData(args: string[]): Promise<number> {
  let workers: number, cifarImages: number, imagenetImages: number;
  try {
    const { values } = parseArgs({
      args,
      options: {
        workers: { type: "string", default: String(navigator.hardwareConcurrency) },
        "cifar-images": { type: "string", default: "200000" },
        "imagenet-images": { type: "string", default: "600" },
      },
      strict: true,
      allowPositionals: false,
    });
    workers = intFlag("workers", values.workers, 0);
    cifarImages = intFlag("cifar-images", values["cifar-images"], 0);
    imagenetImages = intFlag("imagenet-images", values["imagenet-images"], 0);
  } catch (e) {
    console.error(`error: ${(e as Error).message} (see --help)\n${USAGE}`);
    return 2;
  }
  console.log(
    `data pipeline throughput, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; img/CPU-s is the ` +
      "rate per fully used core (all threads' CPU time), independent of other load on the machine",
  );
  for (const [name, augmentation] of CIFAR_VARIANTS) {
    for (const w of workers > 0 ? [0, workers] : [0]) {
      const r = await benchCifarPipeline({ workers: w, images: cifarImages, augmentation });
      console.log(line(name, r));
    }
  }
  for (const [name, augmentation] of IMAGENET_VARIANTS) {
    for (const w of workers > 0 ? [0, workers] : [0]) {
      const r = await benchImagenetPipeline({ workers: w, images: imagenetImages, augmentation });
      console.log(line(name, r, `, mean JPEG ${(r.meanJpegBytes / 1024).toFixed(0)} KiB`));
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await runBenchData(Deno.args));
