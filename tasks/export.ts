/**
 * `deno task export --checkpoint PATH --out model.safetensors`: writes a checkpoint's model weights alone, under
 * torchvision's names and layouts, so that `model.load_state_dict(safetensors.torch.load_file(path), strict=True)`
 * accepts them: no `optim.` tensors, and `__metadata__` reduced to `format: "pt"` plus the architecture, the class
 * names, the input normalisation (`normalization`: `{"mean": [...], "std": [...]}`) when the checkpoint has them, and
 * how its images were prepared (`input`: `{"dataset", "imageSize", "transforms", "decoder"}`, which eval follows). `--ema` writes the checkpoint's average of the weights (`--model-ema`) instead.
 * @module
 */
import { parseArgs, runTask, UsageError } from "./args.ts";
import { checkOutputPath } from "./output_path.ts";
import { statIfExists } from "../io/stat_if_exists.ts";
import { encodeWeights, loadWeights } from "../io/checkpoint.ts";
import { atomicWriteFile } from "../io/atomic_write.ts";

/** Resolved options of the export task. */
export interface ExportOptions {
  /** Checkpoint (or weights file) to read. */
  checkpoint: string;
  /** Weights file to write. */
  out: string;
  /** Write the average of the weights (`ema.*`) instead of the model (default false). */
  ema?: boolean;
}

/** What {@linkcode exportWeights} wrote. */
export interface ExportResult {
  /** Number of model tensors written. */
  tensors: number;
  /** Number of tensors left out (optimizer state; the average, or with `ema` the model). */
  dropped: number;
  /** Size of the written file in bytes. */
  bytes: number;
}

const HELP = `Usage: deno task export --checkpoint PATH --out FILE [--ema]

Writes the model weights of a training checkpoint as a plain safetensors file that torchvision loads with
load_state_dict(..., strict=True): torchvision's names and layouts, no optimizer state.

Options:
  --checkpoint PATH   checkpoint to read (required), e.g. runs/NAME/best.safetensors
  --out FILE          weights file to write (required), e.g. model.safetensors; replaced atomically
  --ema               write the exponential moving average of the weights (a run trained with --model-ema)
  -h, --help          this text

In PyTorch: python3 docs/safetensors_to_torchvision.py FILE builds the matching torchvision ResNet and loads it.
`;

/** Metadata keys carried over from a checkpoint into the exported file (harmless to torch, useful to `eval`). */
const KEPT_METADATA = ["arch_spec", "class_names", "normalization", "input"];

/** Parses the export task's command line. Returns "help" for --help. @throws {UsageError} */
export function parseExportArgs(args: string[]): ExportOptions | "help" {
  const { values, positionals } = parseArgs({
    args,
    options: {
      checkpoint: { type: "string" },
      out: { type: "string" },
      ema: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) return "help";
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.checkpoint === undefined || values.checkpoint === "") {
    throw new UsageError("--checkpoint PATH is required");
  }
  if (values.out === undefined || values.out === "") throw new UsageError("--out FILE is required");
  return { checkpoint: values.checkpoint, out: values.out, ema: values.ema };
}

/**
 * Reads the checkpoint at `options.checkpoint` and writes its model weights alone to `options.out`, atomically.
 * @throws {UsageError} when `options.out` is the checkpoint itself (by another name, a link to it or a hard link),
 * which the export would replace by the bare weights: the training state lost.
 */
export async function exportWeights(options: ExportOptions): Promise<ExportResult> {
  if (await sameFile(options.checkpoint, options.out)) {
    throw new UsageError(
      `--out ${options.out} is the file of --checkpoint ${options.checkpoint}: the export would replace the ` +
        `checkpoint by its bare weights (choose another --out)`,
      "--out",
    );
  }
  const { model, metadata, dropped } = await loadWeights(options.checkpoint, { ema: options.ema });
  const extra: Record<string, string> = {};
  for (const key of KEPT_METADATA) if (metadata[key] !== undefined) extra[key] = metadata[key];
  // How the training images were prepared, so that `deno task eval` of the export prepares images alike (a CIFAR-stem
  // model at 32x32, not torchvision's 224 crop): "input" = {dataset, imageSize, transforms, decoder}.
  if (metadata.config !== undefined) {
    const { dataset, imageSize, transforms, decoder } = JSON.parse(metadata.config);
    if (dataset !== undefined) extra.input = JSON.stringify({ dataset, imageSize, transforms, decoder });
  }
  const out = encodeWeights(model, extra);
  await atomicWriteFile(options.out, out);
  return { tensors: model.size, dropped: dropped.length, bytes: out.length };
}

/** Whether paths `a` and `b` name one existing file: the same real path, or the same device and inode. */
async function sameFile(a: string, b: string): Promise<boolean> {
  const stat = (p: string) =>
    Deno.stat(p).catch((e) => (e instanceof Deno.errors.NotFound ? undefined : Promise.reject(e)));
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (!sa || !sb) return false;
  if (sa.ino !== null && sb.ino !== null) return sa.dev === sb.dev && sa.ino === sb.ino;
  return (await Deno.realPath(a)) === (await Deno.realPath(b));
}

if (import.meta.main) {
  await runTask(async () => {
    const options = parseExportArgs(Deno.args);
    if (options === "help") return void console.log(HELP);
    if (!(await statIfExists(options.checkpoint))?.isFile) {
      throw new UsageError(`--checkpoint ${options.checkpoint}: no such file`, "--checkpoint");
    }
    await checkOutputPath(options.out, "--out");
    const result = await exportWeights(options);
    console.log(
      `wrote ${options.out}: ${result.tensors} tensors, ${result.bytes} bytes` +
        (options.ema ? " (the average of the weights)" : "") +
        (result.dropped ? ` (left out ${result.dropped} optimizer${options.ema ? " and model" : ""} tensors)` : ""),
    );
  });
}
