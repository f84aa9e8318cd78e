/**
 * `deno task summary --arch resnet50 [--stem cifar|imagenet] [--num-classes N] [--input 224|HxW] [--width 64]
 * [--depth 0|1|2] [--json]`: layer-by-layer output shapes, parameters and MACs of a ResNet from pure shape
 * arithmetic (no GPU needed).
 * @module
 */
import { choiceFlag, intFlag, parseArgs, runTask, UsageError } from "./args.ts";
import { ARCHITECTURES, archName, isArchName, type ResNetSpec, resnetSpec } from "../models/resnet_spec.ts";
import { resnetPlan } from "../models/resnet_plan.ts";
import { resnetSummary, type Summary } from "../models/resnet_summary.ts";

/** Resolved options of the summary task. */
export interface SummaryOptions {
  spec: ResNetSpec;
  height: number;
  width: number;
  /** Deepest row level shown in the table: 0 = stages, 1 = blocks, 2 = every layer. */
  depth: number;
  json: boolean;
}

const HELP = `Usage: deno task summary [options]

Prints one row per layer of a ResNet (output shape in PyTorch's (batch, C, H, W) order, parameters, MACs) and the
totals, from shape arithmetic alone.

Options:
  --arch NAME         ${Object.keys(ARCHITECTURES).join(", ")} (default resnet18)
  --stem KIND         imagenet (7x7/2 conv + max pool) or cifar (3x3/1 conv, no pool) (default imagenet)
  --num-classes N     classifier outputs (default 1000 for imagenet, 10 for cifar)
  --input N|HxW       input size (default 224 for imagenet, 32 for cifar)
  --width N           stem width, 64 in torchvision (default 64)
  --depth D           rows shown: 0 stages, 1 blocks, 2 all layers (default 2)
  --json              print one JSON object { model, input, layers: [{ name, outputShape, params, macs }], totals }
  -h, --help          this text
`;

/** Parses the summary task's command line. Returns "help" for --help. @throws {UsageError} */
export function parseSummaryArgs(args: string[]): SummaryOptions | "help" {
  const { values, positionals } = parseArgs({
    args,
    options: {
      arch: { type: "string", default: "resnet18" },
      stem: { type: "string", default: "imagenet" },
      "num-classes": { type: "string" },
      input: { type: "string" },
      width: { type: "string", default: "64" },
      depth: { type: "string", default: "2" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) return "help";
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!isArchName(values.arch)) {
    throw new UsageError(
      `--arch: unknown architecture "${values.arch}"; expected one of ${Object.keys(ARCHITECTURES).join(", ")}`,
    );
  }
  const stem = choiceFlag("stem", values.stem, ["imagenet", "cifar"] as const);
  const numClasses = values["num-classes"] === undefined
    ? (stem === "cifar" ? 10 : 1000)
    : intFlag("num-classes", values["num-classes"]);
  const input = values.input ?? (stem === "cifar" ? "32" : "224");
  const m = /^(\d+)(?:x(\d+))?$/.exec(input.trim());
  if (!m) throw new UsageError(`--input expects N or HxW with positive integers, got "${input}"`);
  const height = intFlag("input", m[1]);
  const width = intFlag("input", m[2] ?? m[1]);
  return {
    spec: resnetSpec(values.arch, { stem, numClasses, width: intFlag("width", values.width) }),
    height,
    width,
    depth: intFlag("depth", values.depth, 0),
    json: values.json,
  };
}

/** The summary as the `--json` object. */
export function summaryJson(spec: ResNetSpec, summary: Summary): object {
  return {
    model: spec,
    input: summary.input,
    layers: summary.layers.map((r) => ({
      name: r.name,
      kind: r.kind,
      depth: r.depth,
      outputShape: r.outputShape,
      params: r.params,
      macs: r.macs,
    })),
    totals: summary.totals,
  };
}

/** The human-readable table: rows up to `depth`, stage rows set off by rules, totals at the bottom. */
export function formatSummaryTable(spec: ResNetSpec, summary: Summary, depth = 2): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const shown = summary.layers.filter((r) => r.depth <= depth);
  const rows = shown.map((r) =>
    [
      `${"  ".repeat(r.depth)}${r.name} (${r.kind})`,
      `(1, ${r.outputShape.join(", ")})`,
      r.params ? n(r.params) : "--",
      r.macs ? n(r.macs) : "--",
      r.depth,
    ] as const
  );
  const head = ["Layer (type)", "Output shape", "Params", "MACs"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: readonly (string | number)[]) =>
    cells.slice(0, 4).map((c, i) => (i < 2 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join("  ");
  const rule = "=".repeat(w.reduce((a, b) => a + b + 2, -2));
  const thin = "-".repeat(rule.length);
  const out = [
    `${archTitle(spec)}: ${spec.block} blocks [${spec.layers.join(", ")}], ${spec.stem} stem, width ${spec.width}, ` +
    `${spec.numClasses} classes; input (1, ${summary.input.join(", ")})`,
    rule,
    line(head),
    rule,
  ];
  const isStage = (i: number) => shown[i].kind === "stage";
  rows.forEach((r, i) => {
    // A rule above and below every stage (layer1-4), so they are easy to find.
    if (r[4] === 0 && i > 0 && (isStage(i) || isStage(i - 1) || rows[i - 1][4] > 0)) out.push(thin);
    out.push(line(r));
  });
  const { params, macs } = summary.totals;
  out.push(
    rule,
    `Total params: ${n(params)} (${(params * 4 / 2 ** 20).toFixed(2)} MiB in float32)`,
    `Total MACs: ${n(macs)} (${(macs / 1e9).toFixed(4)} G; about ${(2 * macs / 1e9).toFixed(2)} GFLOP forward)`,
    rule,
  );
  return out.join("\n");
}

function archTitle(spec: ResNetSpec): string {
  return archName(spec)?.replace("resnet", "ResNet-") ?? "ResNet";
}

if (import.meta.main) {
  await runTask(() => {
    const options = parseSummaryArgs(Deno.args);
    if (options === "help") return void console.log(HELP);
    let summary: Summary;
    try {
      summary = resnetSummary(resnetPlan(options.spec), options.height, options.width);
    } catch (e) {
      // An impossible input is a bad command line.
      throw new UsageError(`--input: ${(e as Error).message}`);
    }
    console.log(
      options.json
        ? JSON.stringify(summaryJson(options.spec, summary))
        : formatSummaryTable(options.spec, summary, options.depth),
    );
  });
}
