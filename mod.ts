/**
 * resnet-webgpu: torchvision's ResNets trained on the GPU through WebGPU with TensorFlow.js, from Deno.
 *
 * ```ts
 * import { initWebGPU, registerFastKernels, resolveTrainConfig, train } from "./mod.ts";
 *
 * await initWebGPU();
 * registerFastKernels();
 * const result = await train(resolveTrainConfig({ dataset: "synthetic", epochs: 1 }), { log: console.log });
 * console.log(result.epochs.at(-1)?.test_top1);
 * ```
 *
 * The public API, by layer (bottom first): WebGPU start-up and our kernels; tensor files and checkpoints; models
 * and data; training and evaluation. The command lines (`deno task train|eval|summary|export|prepare|bench`) live
 * in `tasks/` and are thin wrappers over these; their flag parsing is not part of the library.
 * @module
 */

// WebGPU start-up and our kernels.
export {
  type AdapterReport,
  initWebGPU,
  throwOnWebGPUErrors,
  WebGPUDeviceError,
  type WebGPUOptions,
  WebGPUUnavailableError,
} from "./kernels/webgpu_backend.ts";
export { activeFastKernels, FAST_KERNEL_NAMES, registerFastKernels, restoreStockKernels } from "./kernels/register.ts";
export type { FastKernelOptions } from "./kernels/register.ts";
export { batchNormTrain, type BatchNormTrainOptions, type BatchNormTrainResult } from "./kernels/batch_norm_train.ts";
export { batchNormEval, type BatchNormEvalOptions } from "./kernels/batch_norm_eval.ts";
// The kernel self-test: every correctness case, as the Deno tests and the browser page (`/?selftest`) run them.
export { KERNEL_CASES } from "./kernels/selftest/cases.ts";
export {
  type KernelCase,
  KernelCaseFailure,
  type KernelCaseReport,
  runKernelCases,
} from "./kernels/selftest/kernel_case.ts";

// Tensor files and checkpoints: safetensors that PyTorch reads, NumPy arrays.
export type { HostDType, HostTensor, StateDict } from "./io/host_tensor.ts";
export {
  type CheckpointState,
  type DataPosition,
  decodeCheckpoint,
  decodeWeights,
  encodeCheckpoint,
  encodeWeights,
  loadCheckpoint,
  loadWeights,
  saveCheckpoint,
  type WeightsFile,
} from "./io/checkpoint.ts";
export { BEST_CHECKPOINT, findResumeCheckpoint, LAST_CHECKPOINT, type ResumeCheckpoint } from "./io/checkpoint_dir.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsContents,
  SafetensorsError,
  writeSafetensors,
} from "./io/safetensors.ts";
export { decodeNpy, encodeNpy, type NpyArray, writeNpy } from "./io/npy.ts";
export {
  CheckpointSaver,
  type CheckpointSaverOptions,
  type ResumePoint,
  type SaveResult,
  type Stateful,
} from "./io/checkpoint_saver.ts";

// Data parallelism: collectives over MPI (through Deno's FFI, only under a launcher) or the one-process stand-in.
export { type Collective, CollectiveTimeoutError, LocalCollective } from "./dist/collective.ts";
export { type LauncherWorld, launcherWorld } from "./dist/launcher_env.ts";
export { MpiCollective, type MpiCollectiveOptions } from "./dist/mpi_collective.ts";
export { openCollective, type OpenCollectiveOptions } from "./dist/open_collective.ts";

// Models: architecture as data, shape arithmetic, the tfjs model and the torchvision state-dict contract.
export {
  ARCHITECTURES,
  type ArchName,
  archName,
  type BlockKind,
  type ResNetOptions,
  type ResNetSpec,
  resnetSpec,
  type StemKind,
  validateSpec,
} from "./models/resnet_spec.ts";
export { type ResNetPlan, resnetPlan } from "./models/resnet_plan.ts";
export { InputTooSmallError, resnetSummary, type Summary, type SummaryRow } from "./models/resnet_summary.ts";
export { type CreateOptions, createResNet, type ForwardOptions, type ForwardResult, ResNet } from "./models/resnet.ts";
export { fromTorchLayout, toTorchLayout } from "./models/torch_layout.ts";
export { resnet101, resnet152, resnet18, resnet34, resnet50, type ZooOptions } from "./models/zoo.ts";

// Data.
export {
  CIFAR100_NORMALIZATION,
  CIFAR10_NORMALIZATION,
  createLoaders,
  type DataConfig,
  IMAGENET_NORMALIZATION,
  type LoaderOptions,
  type Loaders,
} from "./data/loaders.ts";
export type { Batch, BatchLoader } from "./data/batch.ts";
export {
  IMAGENET_COUNTS,
  type ImageNetIndex,
  type ImageNetLayout,
  type ImageNetOptions,
  indexImageNet,
} from "./data/imagenet_dataset.ts";
export { type ImageNetDevkit, type ImageNetSynset, parseMetaMat, readDevkit } from "./data/imagenet_devkit.ts";
export { type MatValue, readMat5 } from "./data/mat5.ts";
export { type Shard, shardSlice } from "./data/batch_plan.ts";
export { DATA_TRANSFORMS, type DataTransforms, type Normalization } from "./data/transforms.ts";
export { IMAGE_DECODERS, type ImageDecoder } from "./data/decode_rgb.ts";
export {
  applyAugmentOp,
  applyAugmentSteps,
  AUGMENT_OPS,
  type AugmentOp,
  type AugmentStep,
  type Fill,
} from "./data/augment_ops.ts";
export {
  AUTO_AUGMENT_POLICIES,
  type AutoAugmentPolicy,
  autoAugmentSampler,
  type AutoAugmentSettings,
} from "./data/auto_augment.ts";
export { eraseBox, sampleRandomErasing } from "./data/random_erasing.ts";
export type { ImageAugmentation } from "./data/image_augmentation.ts";
export {
  type BatchMix,
  batchMixFor,
  type BatchMixOptions,
  cutmixBox,
  sampleBatchMix,
  sampleBeta,
} from "./data/batch_mix.ts";
export { mixBatch, type MixBox, type MixParams } from "./kernels/mix_batch.ts";

// Training and evaluation.
export {
  type Arch,
  ARCHS,
  ConfigError,
  type DatasetName,
  DATASETS,
  type EvalConfig,
  RECIPE_SPECS,
  recipeFor,
  type RecipeName,
  RECIPES,
  type RecipeSpec,
  resolveTrainConfig,
  type TrainConfig,
  trainConfigFromJSON,
} from "./train/config.ts";
export { NonFiniteLossError, type ProgressEvent, train, type TrainHooks, type TrainResult } from "./train/trainer.ts";
export { FieldMessageError, literal } from "./io/config_error.ts";
export type { EpochRecord } from "./train/run_log.ts";
export {
  type DataParallelStep,
  makeDataParallelStep,
  makeTrainStep,
  type StepOptions,
  type StepOutput,
  type TrainStep,
} from "./train/train_step.ts";
export { SGD, type SGDConfig, type SGDOptions, sgdOptionsFor, weightDecayFilter } from "./train/sgd.ts";
export { emaDecay, ModelEma } from "./train/model_ema.ts";
export {
  learningRateAt,
  SCHEDULE_KINDS,
  type ScheduleConfig,
  scheduleConfigFor,
  type ScheduleKind,
} from "./train/lr_schedule.ts";
export { clipGradNorm, softmaxCrossEntropy } from "./train/losses.ts";
export { type EvalResult, topKCorrect } from "./train/metrics.ts";
export { evaluate, type Evaluation } from "./train/evaluate.ts";
export {
  type CheckpointEvaluation,
  evaluateCheckpoint,
  type EvaluateCheckpointOptions,
  inferResNetSpec,
} from "./train/evaluate_checkpoint.ts";
