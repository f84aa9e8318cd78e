import { assert, assertEquals, throws } from "../assert.ts";
import { formatSummaryTable, parseSummaryArgs, summaryJson } from "../../tasks/summary.ts";
import { resnetPlan } from "../../models/resnet_plan.ts";
import { resnetSummary } from "../../models/resnet_summary.ts";
import { UsageError } from "../../tasks/args.ts";

async function run(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../tasks/summary.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("summary --json prints the layers and totals of the reference table", async () => {
  const { code, stdout } = await run("--arch", "resnet50", "--stem", "cifar", "--num-classes", "100", "--json");
  assertEquals(code, 0);
  const j = JSON.parse(stdout);
  assertEquals(j.totals, {
    params: 23_705_252,
    macs: j.layers.filter((l: { depth: number }) => l.depth === 0)
      .reduce((a: number, l: { macs: number }) => a + l.macs, 0),
  });
  assertEquals(Number((j.totals.macs / 1e9).toFixed(4)), 1.298);
  const byName = new Map(j.layers.map((l: { name: string }) => [l.name, l]));
  assertEquals((byName.get("layer3") as { outputShape: number[] }).outputShape, [1024, 8, 8]);
  assertEquals((byName.get("avgpool") as { outputShape: number[] }).outputShape, [2048]);
  assertEquals(byName.has("maxpool"), false, "the CIFAR stem has no max pool");
  for (const l of j.layers) assert("name" in l && "outputShape" in l && "params" in l && "macs" in l);
});

Deno.test("summary rejects bad command lines with status 2 and names the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--arch", "resnet19"], /--arch: unknown architecture "resnet19"/],
    [["--width", "0"], /--width expects an integer >= 1, got "0"/],
    [["--num-classes", "ten"], /--num-classes expects an integer/],
    [["--input", "0"], /--input expects an integer >= 1, got "0"/],
    [["--input", "32x"], /--input expects N or HxW/],
    [["--stem", "tiny"], /--stem must be one of imagenet, cifar/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await run(...args);
    assertEquals(code, 2, args.join(" "));
    assert(message.test(stderr), `${args.join(" ")}: ${stderr}`);
  }
});

Deno.test("parseSummaryArgs defaults follow the stem", () => {
  const cifar = parseSummaryArgs(["--stem", "cifar"]);
  assert(cifar !== "help");
  assertEquals([cifar.spec.numClasses, cifar.height, cifar.width], [10, 32, 32]);
  const imagenet = parseSummaryArgs(["--arch", "resnet34", "--input", "160x128", "--width", "16"]);
  assert(imagenet !== "help");
  assertEquals([imagenet.spec.numClasses, imagenet.height, imagenet.width, imagenet.spec.width], [1000, 160, 128, 16]);
  assertEquals(parseSummaryArgs(["--help"]), "help");
  throws(() => parseSummaryArgs(["extra"]), UsageError);
});

Deno.test("the table shows shapes in PyTorch order, stage rows and totals", () => {
  const spec = (parseSummaryArgs(["--arch", "resnet50"]) as { spec: Parameters<typeof resnetPlan>[0] }).spec;
  const summary = resnetSummary(resnetPlan(spec), 224, 224);
  const table = formatSummaryTable(spec, summary, 0);
  assert(/^ResNet-50: bottleneck blocks \[3, 4, 6, 3\]/.test(table));
  assert(/layer4 \(stage\)\s+\(1, 2048, 7, 7\)\s+14,964,736\s+809,238,528/.test(table), table);
  assert(table.includes("Total params: 25,557,032"));
  assert(table.includes("4.0892 G"));
  assert(!table.includes("layer1.0"), "depth 0 shows stages only");
  assert(formatSummaryTable(spec, summary, 2).includes("layer1.0.downsample.0 (conv)"));
  assertEquals((summaryJson(spec, summary) as { totals: unknown }).totals, summary.totals);
});
