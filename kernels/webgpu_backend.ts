/**
 * Selects tfjs's `webgpu` backend on a device we create ourselves, so that we choose the features (`shader-f16`,
 * `subgroups`, timestamp queries) and limits, and so that a missing adapter is a clear error instead of tfjs's
 * generic one or a silent fall-back to the (unusably slow) CPU backend.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { installBindGroupCache } from "./bind_group_cache.ts";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** What {@linkcode initWebGPU} found and created. */
export interface AdapterReport {
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100 80GB HBM3". */
  name: string;
  vendor: string;
  architecture: string;
  /** True for software adapters such as Mesa's llvmpipe: correct, but orders of magnitude slower than a GPU. */
  isFallbackAdapter: boolean;
  /** Features the device was created with (not merely those the adapter offers). */
  features: string[];
  /** The limits that matter for our kernels, as granted to the device. */
  limits: {
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    /** How many tensors one program binds: multi-tensor SGD groups parameters by it. */
    maxStorageBuffersPerShaderStage: number;
  };
}

/** Options for {@linkcode initWebGPU}. */
export interface WebGPUOptions {
  /** Optional features to request when the adapter offers them. Default: timestamp-query, shader-f16, subgroups. */
  optionalFeatures?: string[];
  /** Features that must be present; their absence is an error. Default: none. */
  requiredFeatures?: string[];
  /**
   * Reuse bind groups and uniform buffers across dispatches with the same buffers and contents
   * (kernels/bind_group_cache.ts). Default: true. Applies to the first call, which creates the backend.
   */
  bindGroupCache?: boolean;
}

/** Thrown when no WebGPU adapter can be found; the message says what to install or where to run instead. */
export class WebGPUUnavailableError extends Error {
  constructor(detail: string) {
    super(
      `No WebGPU adapter is available (${detail}). This toolkit trains on the GPU through WebGPU and has no CPU ` +
        "fall-back. On a machine without a GPU, install Mesa's software renderer (Debian/Ubuntu: " +
        "`apt-get install libegl-mesa0 libgl1-mesa-dri mesa-vulkan-drivers`) for small tests; for real training run " +
        "on a machine with a GPU and its Vulkan driver (NVIDIA: the driver plus `libvulkan1`).",
    );
    this.name = "WebGPUUnavailableError";
  }
}

const DEFAULT_OPTIONAL_FEATURES = ["timestamp-query", "shader-f16", "subgroups"];

let current: AdapterReport | undefined;

/**
 * Runs `probe` (adapter or device creation) with `XDG_RUNTIME_DIR` set when it is unset. Mesa's Vulkan device-select
 * layer looks for a Wayland display, and libwayland then prints "error: XDG_RUNTIME_DIR is invalid or not set in the
 * environment." twice: the first line a new user reads on a headless machine, and no error at all. Pointed at a
 * folder without a display socket, the look-up fails silently; the layer keeps working (`MESA_VK_DEVICE_SELECT`).
 * The variable is unset again afterwards.
 */
async function quietDisplayProbe<T>(probe: () => Promise<T>): Promise<T> {
  // In a browser (the demo page) there is no Deno and no Mesa layer to quieten.
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (!deno || deno.build.os !== "linux" || deno.env.get("XDG_RUNTIME_DIR") !== undefined) return await probe();
  deno.env.set("XDG_RUNTIME_DIR", "/nonexistent-runtime-dir");
  try {
    return await probe();
  } finally {
    deno.env.delete("XDG_RUNTIME_DIR");
  }
}

/**
 * Creates a WebGPU device, registers it as tfjs's `webgpu` backend and makes that the active backend. Idempotent:
 * later calls return the first report.
 * @throws {WebGPUUnavailableError} when `navigator.gpu` is missing or no adapter is found.
 */
export async function initWebGPU(options: WebGPUOptions = {}): Promise<AdapterReport> {
  if (current && tf.getBackend() === "webgpu") return current;
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) throw new WebGPUUnavailableError("navigator.gpu is undefined in this runtime");
  const adapter = await quietDisplayProbe(() => gpu.requestAdapter({ powerPreference: "high-performance" }));
  if (!adapter) throw new WebGPUUnavailableError("navigator.gpu.requestAdapter() returned null");

  const wanted = options.optionalFeatures ?? DEFAULT_OPTIONAL_FEATURES;
  const required = options.requiredFeatures ?? [];
  const offered = new Set<string>(adapter.features);
  const missing = required.filter((f) => !offered.has(f));
  if (missing.length > 0) {
    throw new Error(
      `The WebGPU adapter "${adapter.info.description}" lacks required feature(s) ${missing.join(", ")}; ` +
        `it offers ${[...adapter.features].join(", ") || "none"}.`,
    );
  }
  const features = [...new Set([...required, ...wanted.filter((f) => offered.has(f))])];
  const l = adapter.limits;
  const device = await quietDisplayProbe(() =>
    adapter.requestDevice({
      requiredFeatures: features as GPUFeatureName[],
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    })
  );

  // tfjs never checks for device errors: an invalid pipeline (e.g. more storage buffers than the limit) silently
  // leaves its output unwritten. Collect them, so callers can turn wrong numbers into an error (see takeWebGPUErrors).
  device.addEventListener("uncapturederror", (e) => {
    const error = (e as GPUUncapturedErrorEvent).error;
    if (uncaptured.length < MAX_KEPT_ERRORS) uncaptured.push(`${error.constructor.name}: ${error.message}`);
    else uncaptured[MAX_KEPT_ERRORS - 1] = `... and more (latest: ${error.message})`;
  });

  // Replace the factory tfjs registered at import time with one that hands over our device.
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  // deno-lint-ignore no-explicit-any
  tf.registerBackend("webgpu", () => new WebGPUBackend(device, adapter.info as any), 3);
  const ok = await tf.setBackend("webgpu");
  if (!ok || tf.getBackend() !== "webgpu") {
    throw new WebGPUUnavailableError(`tfjs could not start its webgpu backend on "${adapter.info.description}"`);
  }
  if (options.bindGroupCache ?? true) installBindGroupCache();
  const info = adapter.info;
  current = {
    name: info.description || `${info.vendor} ${info.architecture}`.trim() || "unknown adapter",
    vendor: info.vendor,
    architecture: info.architecture,
    isFallbackAdapter: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    features: [...device.features].sort(),
    limits: {
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
    },
  };
  return current;
}

const MAX_KEPT_ERRORS = 10;
const uncaptured: string[] = [];

/**
 * The WebGPU errors (validation, out of memory, internal) that the device reported and nothing caught since the last
 * call, oldest first (at most 10 kept); clears the list. The device reports them asynchronously, so call this after
 * a readback, which waits for the work before it.
 */
export function takeWebGPUErrors(): string[] {
  return uncaptured.splice(0);
}

/** Some GPU work failed on the device: its results are not to be trusted. */
export class WebGPUDeviceError extends Error {
  constructor(readonly errors: string[], context: string) {
    super(
      `WebGPU reported ${errors.length} error(s) ${context}, so results computed since are unreliable; the first: ` +
        errors[0],
    );
    this.name = "WebGPUDeviceError";
  }
}

/**
 * Throws {@linkcode WebGPUDeviceError} if the device reported errors since the last check (see
 * {@linkcode takeWebGPUErrors}); `context` says where, e.g. "during training steps 1-20".
 */
export function throwOnWebGPUErrors(context: string): void {
  const errors = takeWebGPUErrors();
  if (errors.length > 0) throw new WebGPUDeviceError(errors, context);
}

/** True on a software adapter such as llvmpipe (small tiles and split targets: its "cores" are CPU threads). */
export function isSoftwareAdapter(): boolean {
  return current?.isFallbackAdapter ?? false;
}

/** The report of the device {@linkcode initWebGPU} created, or undefined before it ran. */
export function currentAdapter(): AdapterReport | undefined {
  return current;
}
