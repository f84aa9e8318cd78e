/**
 * `mpirun -np N deno task bench-allreduce [--arch resnet18] [--classes 10] [--stem cifar] [--repeats 20]`: the cost
 * of the gradient all-reduce of one data-parallel training step of that model (its parameter count in float32),
 * measured over MPI on this machine. Rank 0 prints; a single process (no launcher) reports nothing to reduce.
 * @module
 */
import { choiceFlag, intFlag, parseArgs, runTask, UsageError } from "./args.ts";
import { openCollective } from "../dist/open_collective.ts";
import { allReduceBench } from "../bench/allreduce_bench.ts";
import { isArchName, resnetSpec } from "../models/resnet_spec.ts";
import { resnetPlan } from "../models/resnet_plan.ts";
import { resnetSummary } from "../models/resnet_summary.ts";

const USAGE =
  "usage: mpirun -np N deno task bench-allreduce [--arch resnet18] [--classes 10] [--stem cifar|imagenet] " +
  "[--repeats 20]";

if (import.meta.main) {
  await runTask(async () => {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        arch: { type: "string", default: "resnet18" },
        classes: { type: "string", default: "10" },
        stem: { type: "string", default: "cifar" },
        repeats: { type: "string", default: "20" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) return void console.log(USAGE);
    const arch = values.arch;
    if (!isArchName(arch)) throw new UsageError(`--arch ${arch}: not a torchvision ResNet name`, "--arch");
    const stem = choiceFlag("stem", values.stem, ["cifar", "imagenet"] as const);
    const numClasses = intFlag("classes", values.classes);
    const repeats = intFlag("repeats", values.repeats);
    const size = stem === "cifar" ? 32 : 224;
    const params = resnetSummary(resnetPlan(resnetSpec(arch, { stem, numClasses })), size, size).totals.params;
    const collective = openCollective({ timeoutSeconds: 120 });
    const t = await allReduceBench(collective, params, { repeats });
    if (collective.rank === 0) {
      console.log(
        `${arch} (${stem} stem, ${numClasses} classes): ${params.toLocaleString("en")} parameters, ` +
          `${(t.bytes / 1e6).toFixed(1)} MB of float32 gradients all-reduced per step; ${t.ranks} rank(s) over ` +
          `${collective.description}: median ${t.medianMs.toFixed(1)} ms, min ${t.minMs.toFixed(1)} ms ` +
          `(${repeats} repeats, the slowest rank's)`,
      );
    }
    collective.finalize();
  });
}
