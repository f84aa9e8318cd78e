/**
 * The command line of `deno task eval`: its flags (each sets one {@linkcode EvalConfig} field), their parsing and
 * `--help`.
 * @module
 */
import { UsageError } from "./args.ts";
import { type FlagSpec, helpLines, parseFlagTable } from "./flag_table.ts";
import { defaultEvalConfig, EVAL_FIELDS, type EvalConfig } from "../train/config.ts";

/** Every flag of `deno task eval`, in `--help` order. */
export const EVAL_FLAGS: readonly FlagSpec<keyof EvalConfig>[] = [
  {
    key: "checkpoint",
    help: "checkpoint or weights file",
    shownDefault: "required",
  },
  {
    key: "dataset",
    help: "dataset",
    shownDefault: "the checkpoint's",
  },
  { key: "dataDir", help: "dataset folder", shownDefault: "the checkpoint's" },
  {
    key: "split",
    help: "split",
    shownDefault: "test",
  },
  {
    key: "saveLogits",
    help: "write float32 logits (.npy), dataset order",
    shownDefault: "none",
  },
  { key: "json", help: "print one JSON object", shownDefault: "false" },
  { key: "outJson", help: "also write that JSON object to a file, e.g. runs/NAME/eval.json", shownDefault: "none" },
  { key: "batchSize", help: "images per batch", shownDefault: "256" },
  {
    key: "arch",
    help: "bare weights: network",
    shownDefault: "inferred",
  },
  { key: "width", help: "bare weights: width", shownDefault: "inferred" },
  {
    key: "numClasses",
    help: "bare weights: classes",
    shownDefault: "inferred",
  },
  {
    key: "stem",
    help: "bare weights: stem",
    shownDefault: "inferred",
  },
  {
    key: "imageSize",
    help: "folder/imagenet: image side (bare weights: what they were trained at)",
    shownDefault: "32 (cifar) / 224",
  },
  {
    key: "transforms",
    help: "folder/imagenet: imagenet (resize + center crop) or cifar (as is)",
    shownDefault: "the checkpoint's",
  },
  {
    key: "decoder",
    help: "folder/imagenet: image decoder (js: no native addon, --transforms cifar)",
    shownDefault: "the checkpoint's",
  },
  { key: "help", help: "show this help" },
];

/**
 * Parses `deno task eval` flags, or returns "help".
 * @throws {UsageError} for an unknown flag, a bad value, or a missing `--checkpoint`.
 */
export function parseEvalArgs(argv: string[]): EvalConfig | "help" {
  const given = parseFlagTable(argv, EVAL_FLAGS, EVAL_FIELDS, "eval");
  if (given === "help") return "help";
  if (given.checkpoint === undefined) {
    throw new UsageError("deno task eval: --checkpoint PATH is required", "--checkpoint");
  }
  return { ...defaultEvalConfig(given.checkpoint as string), ...given } as EvalConfig;
}

/** `deno task eval --help`. */
export function evalHelp(): string {
  return [
    "Usage: deno task eval --checkpoint PATH [--dataset ...] [--split test|val] [--save-logits out.npy] [--json]",
    "       [--out-json runs/NAME/eval.json]",
    "",
    "Evaluates a checkpoint (or a bare torchvision safetensors file): loss, top-1, top-5, per-class accuracy and a",
    "confusion matrix. The --arch/--width/--num-classes/--stem/--image-size flags describe a bare weights file that",
    "carries no metadata.",
    "",
    "Flags:",
    ...helpLines(EVAL_FLAGS, EVAL_FIELDS, (s) => s.shownDefault ?? ""),
  ].join("\n");
}
