import { assert, assertEquals, throws } from "../assert.ts";
import { opMacs, resnetOpCases } from "../../bench/op_bench.ts";
import { formatReport, main, parseBenchArgs, runBench } from "../../tasks/bench.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";

Deno.test("opMacs counts multiply-accumulates of the reference's ops", () => {
  // conv 3x3, 64 ch, 32x32, batch 128: the 1,481 ms / 0.0065 TFLOP/s row implies 4.83 GFLOP.
  const conv = resnetOpCases(128, 64, 32, 4096)[0];
  assertEquals(opMacs(conv), 128 * 32 * 32 * 64 * 9 * 64);
  assert(Math.abs((2 * opMacs(conv)) / 1.481 / 1e12 - 0.0065) < 0.0002);
  const mm = resnetOpCases(1, 8, 8, 4096).at(-1)!;
  assertEquals(mm.kind, "matMul");
  assertEquals(opMacs(mm), 4096 ** 3);
  assertEquals(opMacs({ ...conv, xShape: [2, 9, 7, 5], wShape: [3, 3, 5, 6], stride: 2, pad: 1 }), 2 * 5 * 4 * 6 * 45);
});

Deno.test("resnetOpCases: three passes per stage at doubling width and halving size, then a matmul", () => {
  const cases = resnetOpCases(4, 8, 16, 256).filter((c) => c.kind !== "batchNormRelu");
  assertEquals(cases.length, 13);
  assertEquals(cases.map((c) => c.xShape[3]).slice(0, 12), [8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64]);
  assertEquals(cases.map((c) => c.xShape[1]).slice(0, 12), [16, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2]);
  assertEquals(cases.slice(0, 3).map((c) => c.kind), ["conv2d", "conv2dBackpropInput", "conv2dBackpropFilter"]);
  const bn = resnetOpCases(4, 8, 16, 256).filter((c) => c.kind === "batchNormRelu");
  assertEquals(bn.map((c) => [c.xShape, c.wShape, opMacs(c)]), [[[4, 16, 16, 8], [8], 0]]);
});

Deno.test("parseBenchArgs: small defaults on a software adapter, full size on a GPU, flags override", () => {
  const small = parseBenchArgs([], { isFallbackAdapter: true });
  assertEquals([small.batchSize, small.width, small.input, small.stem], [8, 8, 16, "cifar"]);
  const gpu = parseBenchArgs([], { isFallbackAdapter: false });
  assertEquals([gpu.batchSize, gpu.width, gpu.input, gpu.numClasses], [128, 64, 32, 10]);
  const set = parseBenchArgs(["--batch-size", "512", "--input", "224", "--compare-stock", "--json"], {
    isFallbackAdapter: false,
  });
  assertEquals([set.batchSize, set.stem, set.numClasses, set.compareStock, set.json], [
    512,
    "imagenet",
    1000,
    true,
    true,
  ]);
  throws(
    () => parseBenchArgs(["--batch-size", "0"], { isFallbackAdapter: false }),
    /--batch-size: expected an integer >= 1, received "0"/,
  );
  throws(() => parseBenchArgs(["--bogus"], { isFallbackAdapter: false }), /--bogus/);
});

Deno.test("bench exits 2 on an unknown flag, also in --data mode", async () => {
  assertEquals(await main(["--frobnicate"]), 2);
  // --data hands the remaining flags to the pipeline bench, which rejects what it does not know.
  assertEquals(await main(["--data", "--frobnicate"]), 2);
});

Deno.test("formatReport shows both columns and the speed-up when stock was run", () => {
  const t = { ms: 2, tflops: 1, reps: 5 };
  const text = formatReport({
    adapter: "test adapter",
    isFallbackAdapter: false,
    date: "2026-11-23",
    config: parseBenchArgs([], { isFallbackAdapter: false }),
    train: { imagesPerSecond: 300, msPerStep: 10, steps: 3, lastLoss: 2.3 },
    stock: { train: { imagesPerSecond: 100, msPerStep: 30, steps: 3, lastLoss: 2.3 } },
    ops: [{ name: "conv", kind: "conv2d", xShape: [1], wShape: [1], ours: t, stock: { ...t, ms: 8 } }],
  });
  assert(text.includes("test adapter"));
  assert(text.includes("speed-up: 3.00x"), text);
  assert(text.includes("4.00x"), text);
});

Deno.test("runBench times a real (tiny) training step through our kernels", async () => {
  const adapter = await initWebGPU();
  const config = {
    ...parseBenchArgs(["--batch-size", "2", "--input", "8", "--width", "4", "--steps", "1"], adapter),
    ops: false,
  };
  const lines: string[] = [];
  const report = await runBench(config, adapter, (l) => lines.push(l));
  assert(report.train && report.train.imagesPerSecond > 0, JSON.stringify(report.train));
  assert(Number.isFinite(report.train.lastLoss), `loss ${report.train.lastLoss}`);
  assertEquals(report.stock, undefined, "no stock run without --compare-stock");
  assert(lines.some((l) => l.includes("training step, ours")), lines.join("\n"));
  assertEquals(report.adapter, adapter.name);
});

Deno.test("--compare-stock checks every op's output against stock's on the adapter", async () => {
  const adapter = await initWebGPU();
  const config = {
    ...parseBenchArgs(["--batch-size", "2", "--input", "8", "--width", "4", "--compare-stock"], adapter),
    train: false,
  };
  const report = await runBench(config, adapter, () => {});
  assert(report.ops && report.ops.length === 14, `${report.ops?.length} ops`);
  for (const row of report.ops) {
    assert(row.relError !== undefined && row.relError < 1e-4, `${row.name}: relative error ${row.relError}`);
  }
  assert(/rel err/.test(formatReport(report)));
});
