/**
 * Throughput of the input pipelines, measured end to end through the same loaders training uses (batch order,
 * augmentation, normalisation, workers, prefetch queue), on generated data so it needs no download:
 * the CIFAR pipeline (random crop with padding + flip + normalise, 32×32 bytes in memory) and the ImageNet pipeline
 * (JPEG decode + RandomResizedCrop 224 + flip + normalise, 500×375 JPEGs at quality 90), each optionally with the
 * per-image augmentations (AutoAugment, RandAugment, TrivialAugmentWide, RandomErasing).
 * @module
 */
import process from "node:process";
import { PipelineLoader } from "../data/batch_loader.ts";
import { blobFile, type ByteBlob, packBlob, packStrings } from "../data/byte_blob.ts";
import type { SourceSpec } from "../data/batch_source.ts";
import { type ImageAugmentation, NO_IMAGE_AUGMENTATION } from "../data/image_augmentation.ts";
import { loadSharp } from "../data/image_decode.ts";
import { CIFAR10_NORMALIZATION, IMAGENET_NORMALIZATION } from "../data/loaders.ts";
import { identityOrder, keyedRandom } from "../data/random.ts";
import { WorkerPool } from "../data/worker_pool.ts";

/** One throughput measurement. */
export interface PipelineThroughput {
  /** Images delivered per second of wall time, consumer included (it only counts them). */
  imagesPerSecond: number;
  images: number;
  seconds: number;
  /** Background workers used (0 = inline on the calling thread). */
  workers: number;
  /** CPU time the whole process (all threads: main, workers, libvips) spent meanwhile. */
  cpuSeconds: number;
  /**
   * Images per CPU-second: the throughput per fully used core, which does not depend on what else the machine
   * runs (wall-clock img/s does, on a shared machine).
   */
  imagesPerCpuSecond: number;
}

/** Options shared by the two benchmarks. */
export interface PipelineBenchOptions {
  /** Background workers (0 = inline); default: cores. */
  workers?: number;
  batchSize?: number;
  /** Images to time, after one warm-up batch. */
  images?: number;
  /** Per-image augmentations after the crop and flip (default none). */
  augmentation?: Partial<ImageAugmentation>;
}

/** The full augmentation settings of `options`. */
function augmentationOf(options: PipelineBenchOptions): ImageAugmentation {
  return { ...NO_IMAGE_AUGMENTATION, ...options.augmentation };
}

async function timeLoader(spec: SourceSpec, count: number, options: PipelineBenchOptions, defaults: {
  batchSize: number;
  images: number;
}): Promise<PipelineThroughput> {
  const workers = options.workers ?? navigator.hardwareConcurrency;
  const batchSize = options.batchSize ?? defaults.batchSize;
  const images = options.images ?? defaults.images;
  const pool = workers > 0 ? new WorkerPool([spec], workers) : undefined;
  const loader = new PipelineLoader({
    spec,
    source: 0,
    indices: identityOrder(count),
    batchSize,
    train: true,
    augment: true,
    seed: 1,
    pool,
  });
  try {
    // Warm-up: worker start-up, JIT, and sharp's first load are not throughput.
    for await (const _ of loader.batches(0)) break;
    let delivered = 0, epoch = 1;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    while (delivered < images) {
      for await (const batch of loader.batches(epoch++)) {
        delivered += batch.size;
        if (delivered >= images) break;
      }
    }
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      imagesPerSecond: delivered / seconds,
      images: delivered,
      seconds,
      workers,
      cpuSeconds,
      imagesPerCpuSecond: delivered / cpuSeconds,
    };
  } finally {
    await loader.close();
    pool?.close();
  }
}

/**
 * The CIFAR training pipeline on 50,000 random 32×32 images: RandomCrop(32, padding 4), flip, normalise, batches of
 * 512 (default), over `images` images (default 200,000).
 */
export async function benchCifarPipeline(options: PipelineBenchOptions = {}): Promise<PipelineThroughput> {
  const count = 50000;
  const images = new Uint8Array(new SharedArrayBuffer(count * 3072));
  const random = keyedRandom(0);
  const words = new Uint32Array(images.buffer, 0, images.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = random() * 4294967296;
  const spec: SourceSpec = {
    kind: "array",
    images,
    labels: new Uint8Array(count),
    height: 32,
    width: 32,
    pad: 4,
    norm: CIFAR10_NORMALIZATION,
    seed: 1,
    augmentation: augmentationOf(options),
  };
  return await timeLoader(spec, count, options, { batchSize: 512, images: 200000 });
}

/**
 * Encodes `count` distinct photo-like `width`×`height` JPEGs (smooth colour fields, edges and grain) at `quality`.
 * Returned as one shared byte blob with offsets, the layout archive datasets use.
 */
export async function generateJpegs(
  count: number,
  width = 500,
  height = 375,
  quality = 90,
): Promise<ByteBlob> {
  const sharp = await loadSharp();
  const files: Uint8Array[] = [];
  for (let n = 0; n < count; n++) {
    const random = keyedRandom(0x1e6, n);
    const px = new Uint8Array(width * height * 3);
    const f = [1 + random() * 6, 1 + random() * 6, 1 + random() * 6], ph = [random() * 6, random() * 6, random() * 6];
    const edge = width * (0.2 + 0.6 * random());
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const shade = x < edge + 40 * Math.sin(y / 30) ? 0 : 60;
        for (let c = 0; c < 3; c++) {
          const v = 110 + 70 * Math.sin((f[c] * x) / width * 6 + ph[c]) * Math.cos((f[c] * y) / height * 4) + shade +
            (random() - 0.5) * 64;
          px[(y * width + x) * 3 + c] = v;
        }
      }
    }
    files.push(await sharp(px, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer());
  }
  return packBlob(files);
}

/**
 * The ImageNet training pipeline: decode (shrink-on-load) + RandomResizedCrop 224 + flip + normalise on 500×375
 * quality-90 JPEGs (`distinct` different files, default 64, each used 10 times per epoch), batches of 32, over `images` images
 * (default 600).
 */
export async function benchImagenetPipeline(
  options: PipelineBenchOptions & { distinct?: number; parallel?: number } = {},
): Promise<PipelineThroughput & { meanJpegBytes: number }> {
  const distinct = options.distinct ?? 64;
  const blob = await generateJpegs(distinct);
  // A dataset of `count` entries over the `distinct` encoded files, each repeated (entry i is file i % distinct).
  const count = 10 * distinct;
  const workers = options.workers ?? navigator.hardwareConcurrency;
  const spec: SourceSpec = {
    kind: "folder",
    blob: cycledBlob(blob, count),
    nameTable: packStrings(Array.from({ length: count }, (_, i) => `bench_${i % distinct}.jpg`)),
    labels: new Int32Array(count),
    size: 224,
    norm: IMAGENET_NORMALIZATION,
    seed: 1,
    augmentation: augmentationOf(options),
    threads: workers > 0 ? 1 : undefined,
    parallel: options.parallel,
  };
  const result = await timeLoader(spec, count, options, { batchSize: 32, images: 600 });
  return { ...result, meanJpegBytes: blob.offsets[distinct] / distinct };
}

/** A blob whose entry i is file `i % distinct` of `blob`. */
function cycledBlob(blob: ByteBlob, count: number): ByteBlob {
  const distinct = blob.offsets.length - 1;
  return packBlob(Array.from({ length: count }, (_, i) => blobFile(blob, i % distinct)));
}
