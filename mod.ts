/**
 * resnet-webgpu: torchvision's ResNets trained on the GPU through WebGPU with TensorFlow.js, from Deno.
 *
 * ```ts
 * import { createLoaders, initWebGPU, parseTrainArgs, registerFastKernels, resnet18, train } from "./mod.ts";
 * ```
 *
 * The command-line tasks (`deno task train|eval|summary|export|prepare|bench`) are thin wrappers over these.
 * @module
 */

// Models: architecture as data, shape arithmetic, the tfjs model and the torchvision state-dict contract.
export * from "./models/resnet_spec.ts";
export * from "./models/resnet_plan.ts";
export * from "./models/resnet_summary.ts";
export * from "./models/state_layout.ts";
export * from "./io/host_tensor.ts";
export * from "./models/resnet.ts";
export * from "./models/zoo.ts";

// WebGPU start-up and our kernels.
export * from "./kernels/webgpu_backend.ts";
export { activeFastKernels, FAST_KERNEL_NAMES, registerFastKernels, restoreStockKernels } from "./kernels/register.ts";
export type { FastKernelOptions } from "./kernels/register.ts";
export * from "./kernels/batch_norm_train.ts";
export * from "./kernels/batch_norm_eval.ts";

// Data.
export * from "./data/loaders.ts";
export { DATA_TRANSFORMS, type DataTransforms, type Normalization } from "./data/transforms.ts";
export { IMAGE_DECODERS, type ImageDecoder } from "./data/decode_rgb.ts";

// Training, evaluation and checkpoints.
export * from "./train/trainer.ts";
export * from "./train/train_step.ts";
export * from "./train/train_config.ts";
export * from "./train/sgd.ts";
export * from "./train/lr_schedule.ts";
export * from "./train/losses.ts";
export * from "./train/metrics.ts";
export * from "./train/evaluate.ts";
export * from "./train/evaluate_checkpoint.ts";
export * from "./io/checkpoint.ts";
export * from "./io/checkpoint_dir.ts";
export * from "./io/safetensors.ts";
export * from "./io/npy.ts";
export * from "./train/run_log.ts";
