/**
 * Runs a {@linkcode GemmProgram} on the tfjs WebGPU backend: picks the tiling for the device, dispatches, and adds the
 * split-K reduction pass when the tiling cuts K.
 * @module
 */
import type { TensorInfo } from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { isSoftwareAdapter } from "./webgpu_backend.ts";
import {
  chooseGemmTiling,
  type GemmDeviceLimits,
  type GemmTiling,
  type GemmTilingChooser,
  SOFTWARE_GEMM_TILES,
} from "./gemm_tiling.ts";
import { GemmProgram, type UntiledGemmSpec } from "./gemm_program.ts";
import { SplitKReduceProgram } from "./split_k_reduce_program.ts";
import { deferSplitKSum, splitKDeferral } from "./deferred_split_k.ts";
import { webgpuInternals } from "./webgpu_internals.ts";
import {
  bindGroupCacheInstalled,
  programUniformFields,
  recordWithUniforms,
  uniformsGeneration,
} from "./bind_group_cache.ts";

/** Per compiled GEMM program: its uniform binding, valid while the cache's generation is the same. */
const uniformMemo = new WeakMap<GemmProgram, { generation: number; binding: GPUBufferBinding }>();

/**
 * Workgroups to keep in flight on a real GPU: about four per streaming multiprocessor of an H100 (132 SMs). WebGPU
 * does not report the SM count, so this is a constant; it is only a target for split-K, never a correctness matter.
 */
const GPU_TARGET_WORKGROUPS = 528;
/** On a software adapter the "cores" are CPU threads; a handful of workgroups keeps them all busy. */
const CPU_TARGET_WORKGROUPS = 8;

/** The device limits the tiling depends on, read from the backend's device (never hard-coded). */
export function gemmDeviceLimits(backend: WebGPUBackend): GemmDeviceLimits {
  const limits = backend.device.limits;
  const fallback = isSoftwareAdapter();
  return {
    maxWorkgroupStorageBytes: limits.maxComputeWorkgroupStorageSize,
    maxInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    targetWorkgroups: fallback ? CPU_TARGET_WORKGROUPS : GPU_TARGET_WORKGROUPS,
    minKPerSplit: fallback ? 64 : 256,
    ...(fallback ? { tiles: SOFTWARE_GEMM_TILES } : {}),
  };
}

/** How our GEMM kernels pick their tiling; every field defaults to the device's choice. */
export interface GemmRunOptions {
  /**
   * Tile and split-K of each GEMM. Default: {@linkcode deviceGemmTiling}. Tests pass `fixedGemmTiling(...)` to run
   * the tiles a GPU picks on a software adapter, which picks one small tile.
   */
  tiling?: GemmTilingChooser;
  /**
   * Return the result as a pending sum ({@linkcode deferSplitKSum}): with split-K, the reduction pass runs only when
   * something other than a program of ours that reads pending sums (batch norm, the multi-tensor SGD) needs the
   * values; without, the GEMM's output is the one term, so that tfjs's add of the result can stay pending too. For
   * GEMMs whose result such a program consumes: convolutions.
   */
  deferSplitK?: boolean;
}

/** {@linkcode chooseGemmTiling} on the limits of `backend`'s device: what our kernels run by default. */
export function deviceGemmTiling(backend: WebGPUBackend): GemmTilingChooser {
  const limits = gemmDeviceLimits(backend);
  return (dims, options) => chooseGemmTiling(dims, limits, options);
}

/**
 * `spec` with the tiling `choose` picks, as a program, or undefined when its grid would exceed the device's
 * workgroups per dimension.
 */
function tiledProgram(
  backend: WebGPUBackend,
  spec: UntiledGemmSpec,
  choose: GemmTilingChooser,
  options: { noSplit?: boolean } = {},
): { program: GemmProgram; tiling: GemmTiling } | undefined {
  const tiling = choose({ batch: spec.batch, m: spec.m, n: spec.n, k: spec.k }, options);
  const program = new GemmProgram({ ...spec, tiling });
  const maxDim = backend.device.limits.maxComputeWorkgroupsPerDimension;
  return program.dispatch.some((d) => d > maxDim) ? undefined : { program, tiling };
}

/**
 * Runs `program` on `inputs` into `output` (a new tensor when omitted). The first run goes through tfjs's
 * `runWebGPUProgram`, which compiles the pipeline (cached by tfjs) and sets `program.pipeline`; later runs of the same
 * program object skip what that recomputes for an unchanged program (the shader key, the inputs' metadata, the
 * pipeline-cache look-up: ~15 µs of CPU a GEMM on the software adapter) and record it directly, as tfjs would.
 */
function runProgram(
  backend: WebGPUBackend,
  program: GemmProgram,
  inputs: TensorInfo[],
  output?: TensorInfo,
): TensorInfo {
  if (!(program.pipeline instanceof GPUComputePipeline)) {
    return backend.runWebGPUProgram(program, inputs, "float32", undefined, output);
  }
  const out = output ?? backend.makeTensorInfo(program.outputShape, "float32");
  backend.uploadToGPU(out.dataId);
  for (const input of inputs) backend.uploadToGPU(input.dataId); // also sums a pending split-K input
  const compiled = program as GemmProgram & { pipeline: GPUComputePipeline };
  const internals = webgpuInternals(backend, "runGemm");
  if (!bindGroupCacheInstalled() || internals.activeTimers != null) {
    internals.recordAndSubmit(compiled, out, inputs);
    return out;
  }
  // A program is run on the shapes of its spec only, so its uniform fields never change: keep their cached binding
  // until the cache may have dropped it.
  const memo = uniformMemo.get(program);
  let uniforms = memo?.generation === uniformsGeneration() ? memo.binding : undefined;
  if (!uniforms) {
    uniforms = internals.makeUniforms(programUniformFields(compiled, out, inputs));
    uniformMemo.set(program, { generation: uniformsGeneration(), binding: uniforms });
  }
  recordWithUniforms(compiled, out, inputs, uniforms);
  return out;
}

/** A GEMM whose tiling and program are chosen once: {@linkcode prepareGemm}. */
export interface PreparedGemm {
  /** The tiling chosen. */
  tiling: GemmTiling;
  /** Runs the GEMM on `inputs`; a new tensor of `spec.outputShape` (split-K partials summed or deferred). */
  run(inputs: TensorInfo[]): TensorInfo;
}

/**
 * `spec` tiled (by `options.tiling` if given, else for the device) as a program to run any number of times, or
 * undefined when the grid would exceed the device's workgroups per dimension (the caller then runs the stock kernel).
 */
export function prepareGemm(
  backend: WebGPUBackend,
  spec: UntiledGemmSpec,
  options: GemmRunOptions = {},
): PreparedGemm | undefined {
  const tiled = tiledProgram(backend, spec, options.tiling ?? deviceGemmTiling(backend));
  if (!tiled) return undefined;
  const { program, tiling } = tiled;
  const outputShape = [...spec.outputShape];
  return {
    tiling,
    run(inputs) {
      const out = runProgram(backend, program, inputs);
      if (options.deferSplitK && splitKDeferral() && spec.batch === 1) {
        return deferSplitKSum(backend, out, outputShape, tiling.splitK);
      }
      if (tiling.splitK === 1) return out;
      const reduced = backend.runWebGPUProgram(
        new SplitKReduceProgram(outputShape, tiling.splitK),
        [out],
        "float32",
      );
      backend.disposeData(out.dataId);
      return reduced;
    },
  };
}

/**
 * Computes the GEMM described by `spec` (without tiling: chosen here, by `options.tiling` if given) on `inputs` and
 * returns a new tensor of shape `spec.outputShape`, or undefined when the grid would exceed the device's workgroups
 * per dimension (the caller then runs the stock kernel). Intermediate partial sums are disposed.
 */
export function runGemm(
  backend: WebGPUBackend,
  spec: UntiledGemmSpec,
  inputs: TensorInfo[],
  options: GemmRunOptions = {},
): TensorInfo | undefined {
  return prepareGemm(backend, spec, options)?.run(inputs);
}

/**
 * GEMMs that each fill a subset of rows (`storeRow`) of one new output of shape `outputShape`, without split-K, to
 * run any number of times. Undefined when a grid exceeds the device's workgroups per dimension or, unless
 * `options.force`, when some GEMM would have fewer than half the device's target workgroups (then one split-K GEMM is
 * the better choice).
 */
export function prepareGemmsInto(
  backend: WebGPUBackend,
  specs: UntiledGemmSpec[],
  outputShape: number[],
  options: GemmRunOptions & { force?: boolean } = {},
): { run(inputs: TensorInfo[]): TensorInfo } | undefined {
  const limits = gemmDeviceLimits(backend);
  const choose = options.tiling ?? deviceGemmTiling(backend);
  const tiled = specs.map((spec) => tiledProgram(backend, spec, choose, { noSplit: true }));
  if (tiled.some((t) => t === undefined)) return undefined;
  const programs = tiled.map((t) => t!.program);
  const workgroups = (p: GemmProgram) => p.dispatch[0] * p.dispatch[1] * p.dispatch[2];
  if (!options.force && programs.some((p) => workgroups(p) < limits.targetWorkgroups / 2)) return undefined;
  const shape = [...outputShape];
  return {
    run(inputs) {
      const out = backend.makeTensorInfo(shape, "float32");
      for (const p of programs) runProgram(backend, p, inputs, out);
      // Pending with one term, so that tfjs's add of it can stay pending for its consumer (deferred_split_k.ts).
      return options.deferSplitK && splitKDeferral() ? deferSplitKSum(backend, out, shape, 1) : out;
    },
  };
}

/**
 * Runs GEMMs that each fill a subset of rows (`storeRow`) of one new output of shape `outputShape`, without split-K
 * (see {@linkcode prepareGemmsInto}); undefined, running nothing, where that is.
 */
export function runGemmsInto(
  backend: WebGPUBackend,
  specs: UntiledGemmSpec[],
  inputs: TensorInfo[],
  outputShape: number[],
  options: GemmRunOptions & { force?: boolean } = {},
): TensorInfo | undefined {
  return prepareGemmsInto(backend, specs, outputShape, options)?.run(inputs);
}
