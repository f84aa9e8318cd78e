/**
 * Pure tile-size and split-K arithmetic for the tiled GEMM in {@linkcode GemmProgram}. Kept apart from the shader
 * generator so that it can be tested exhaustively without a GPU.
 * @module
 */

/** Output tile of one workgroup and the register block of one thread. */
export interface GemmTile {
  /** Rows of C per workgroup. */
  tileM: number;
  /** Columns of C per workgroup. */
  tileN: number;
  /** Depth of the K slab staged in workgroup memory per iteration. */
  tileK: number;
  /** Rows of C per thread (a multiple of 4: A is read from workgroup memory as vec4). */
  threadM: number;
  /** Columns of C per thread (a multiple of 4: B is read from workgroup memory as vec4). */
  threadN: number;
}

/** A {@linkcode GemmTile} plus how the K dimension is cut into independent partial sums. */
export interface GemmTiling extends GemmTile {
  /** Number of K slices; each writes its own partial C, summed by a second pass when greater than 1. */
  splitK: number;
  /** K elements per slice, a multiple of `tileK`; the last slice may be shorter. */
  kPerSplit: number;
  /**
   * Workgroup-memory slab buffers: 2 (the next slab is stored into one while the other is multiplied; one barrier per
   * slab) when twice {@linkcode tileStorageBytes} fits the device, else 1 (two barriers per slab).
   */
  buffers: 1 | 2;
}

/** What the tiling needs to know about the device. */
export interface GemmDeviceLimits {
  /** `maxComputeWorkgroupStorageSize` in bytes (48 KiB on an H100, 32 KiB on llvmpipe). */
  maxWorkgroupStorageBytes: number;
  /** `maxComputeInvocationsPerWorkgroup`. */
  maxInvocationsPerWorkgroup: number;
  /** Workgroups wanted in flight to fill the device (a few per streaming multiprocessor). */
  targetWorkgroups: number;
  /** Smallest K slice worth a separate partial sum (smaller slices cost more in the reduction than they save). */
  minKPerSplit: number;
  /** Candidate tiles, best first; default {@linkcode GEMM_TILES}. */
  tiles?: readonly GemmTile[];
}

/** Candidate tiles, most efficient (highest arithmetic intensity) first. */
export const GEMM_TILES: readonly GemmTile[] = [
  { tileM: 128, tileN: 128, tileK: 16, threadM: 8, threadN: 8 },
  { tileM: 128, tileN: 64, tileK: 16, threadM: 8, threadN: 4 },
  { tileM: 64, tileN: 128, tileK: 16, threadM: 4, threadN: 8 },
  { tileM: 64, tileN: 64, tileK: 16, threadM: 4, threadN: 4 },
  { tileM: 32, tileN: 32, tileK: 16, threadM: 4, threadN: 4 },
];

/**
 * The one tile used on software adapters (llvmpipe): there, shader compilation dominates (a 128×128×16 tile takes
 * about 20 s to compile, this one about 0.6 s) and the "GPU" is a few CPU threads that big tiles cannot fill anyway.
 */
export const SOFTWARE_GEMM_TILES: readonly GemmTile[] = [{ tileM: 32, tileN: 32, tileK: 8, threadM: 4, threadN: 4 }];

/** Threads in one workgroup of `tile`. */
export function tileThreads(tile: GemmTile): number {
  return (tile.tileM / tile.threadM) * (tile.tileN / tile.threadN);
}

/** Bytes of workgroup memory `tile` stages: `buffers` A and B slabs of f32. */
export function tileStorageBytes(tile: GemmTile, buffers: 1 | 2 = 1): number {
  return (tile.tileM + tile.tileN) * tile.tileK * 4 * buffers;
}

/** Padded output area over real output area: 1 when the tile divides both dimensions. */
export function tileWaste(tile: GemmTile, m: number, n: number): number {
  return (Math.ceil(m / tile.tileM) * tile.tileM * Math.ceil(n / tile.tileN) * tile.tileN) / (m * n);
}

/** The sizes of one batched product: `batch` × [m, k] · [k, n]. */
export interface GemmDims {
  /** Independent products. */
  batch: number;
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** The reduction length. */
  k: number;
}

/** Constraints of one tiling choice. */
export interface GemmTilingOptions {
  /** One K slice only (the GEMM writes rows into a shared output with `storeRow`, which split-K cannot). */
  noSplit?: boolean;
}

/**
 * Chooses the tile and split-K of one GEMM. Our kernels use {@linkcode chooseGemmTiling} on the device's limits
 * (`deviceGemmTiling` in run_gemm.ts); a test passes {@linkcode fixedGemmTiling} instead to run, on a software
 * adapter, the configurations a real GPU picks.
 */
export type GemmTilingChooser = (dims: GemmDims, options: GemmTilingOptions) => GemmTiling;

/**
 * `tile` with K (> 0) cut into `splitK` slices of whole K slabs, or fewer when rounding the slices up to whole slabs
 * would leave trailing slices empty (every slice has work).
 */
export function splitTiling(tile: GemmTile, k: number, splitK: number, buffers: 1 | 2 = 2): GemmTiling {
  let kPerSplit = Math.ceil(Math.ceil(k / splitK) / tile.tileK) * tile.tileK;
  const splits = Math.ceil(k / kPerSplit);
  if (splits === 1) kPerSplit = Math.ceil(k / tile.tileK) * tile.tileK;
  return { ...tile, splitK: splits, kPerSplit, buffers };
}

/**
 * A chooser that always answers `tile` with `splitK` K slices ({@linkcode splitTiling}; one where the caller needs
 * `noSplit`) and `buffers` workgroup-memory buffers, whatever the device: forces a configuration in tests.
 */
export function fixedGemmTiling(tile: GemmTile, splitK = 1, buffers: 1 | 2 = 2): GemmTilingChooser {
  return (dims, options) => splitTiling(tile, dims.k, options.noSplit ? 1 : splitK, buffers);
}

/** Largest padding overhead accepted before a smaller tile is preferred. */
const MAX_WASTE = 1.3;

/**
 * Chooses the tile and split-K for a `batch` × [m, k] · [k, n] product. Among the tiles whose padding waste is
 * acceptable, the most efficient one that reaches `limits.targetWorkgroups` counting the K slices it may be cut into
 * (slices of at least `limits.minKPerSplit`; none with `options.noSplit`); when none does, the one that reaches the
 * most workgroups (the least wasteful tile when none is acceptable). Then as many K slices as it takes to reach the
 * target. A small output with a long K (backprop-filter of deep layers) thus gets a big tile cut along K rather than
 * a small tile that fills the device by itself: the small tile reads twice (or four times) the operand bytes per FLOP
 * from global and workgroup memory, while the split's partial sums cost splitK·M·N floats, a small fraction of the
 * GEMM's M·N·K work since slices are at least `minKPerSplit` long.
 * Two workgroup-memory buffers when twice the tile's slabs fit the device, else one.
 * @throws {RangeError} when a dimension is not a positive integer or no tile fits the device limits.
 */
export function chooseGemmTiling(
  dims: GemmDims,
  limits: GemmDeviceLimits,
  options: GemmTilingOptions = {},
): GemmTiling {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`GEMM dimension ${name} must be a positive integer, got ${v}`);
    }
  }
  const fits = (limits.tiles ?? GEMM_TILES).filter((t) =>
    tileThreads(t) <= limits.maxInvocationsPerWorkgroup && tileStorageBytes(t) <= limits.maxWorkgroupStorageBytes
  );
  if (fits.length === 0) {
    throw new RangeError(
      `no GEMM tile fits the device (max ${limits.maxInvocationsPerWorkgroup} invocations, ` +
        `${limits.maxWorkgroupStorageBytes} bytes of workgroup memory)`,
    );
  }
  const { batch, m, n, k } = dims;
  const workgroups = (t: GemmTile) => batch * Math.ceil(m / t.tileM) * Math.ceil(n / t.tileN);
  const maxSplit = (t: GemmTile) =>
    options.noSplit ? 1 : Math.max(1, Math.floor(k / Math.max(limits.minKPerSplit, t.tileK)));
  const reach = (t: GemmTile) => workgroups(t) * maxSplit(t);
  const acceptable = fits.filter((t) => tileWaste(t, m, n) <= MAX_WASTE);
  let tile: GemmTile;
  if (acceptable.length > 0) {
    tile = acceptable.find((t) => reach(t) >= limits.targetWorkgroups) ??
      acceptable.reduce((best, t) => (reach(t) > reach(best) ? t : best));
  } else {
    tile = fits.reduce((best, t) => (tileWaste(t, m, n) < tileWaste(best, m, n) ? t : best));
  }
  const wg = workgroups(tile);
  const splitK = wg < limits.targetWorkgroups ? Math.min(Math.ceil(limits.targetWorkgroups / wg), maxSplit(tile)) : 1;
  const buffers = tileStorageBytes(tile, 2) <= limits.maxWorkgroupStorageBytes ? 2 : 1;
  return splitTiling(tile, k, splitK, buffers);
}
