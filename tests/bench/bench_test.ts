import { assert, assertEquals, throws } from "../assert.ts";
import { opMacs, resnetOpCases, resnetStridedOpCases } from "../../bench/op_bench.ts";
import { runBench } from "../../bench/run_bench.ts";
import type { TrainBenchResult } from "../../bench/train_step_bench.ts";
import { formatReport, main, parseBenchArgs } from "../../tasks/bench.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { activeFastKernels, FAST_KERNEL_NAMES } from "../../kernels/register.ts";

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
    { name: "UsageError", message: /--batch-size expects an integer >= 1, got "0"/ },
  );
  throws(() => parseBenchArgs(["--bogus"], { isFallbackAdapter: false }), /--bogus/);
});

Deno.test("parseBenchArgs: --kernels takes all, none or a subset in register.ts's names, and names bad input", () => {
  const gpu = { isFallbackAdapter: false };
  assertEquals(parseBenchArgs([], gpu).kernels, [...FAST_KERNEL_NAMES]);
  assertEquals(parseBenchArgs(["--kernels", "none"], gpu).kernels, []);
  assertEquals(parseBenchArgs(["--kernels", "BatchMatMul,Conv2D"], gpu).kernels, ["Conv2D", "BatchMatMul"]);
  throws(() => parseBenchArgs(["--kernels", "Conv2D,Conv3D"], gpu), {
    name: "UsageError",
    message: /--kernels: unknown kernel "Conv3D"; expected .*Conv2DBackpropFilter/,
  });
  throws(() => parseBenchArgs(["--kernels", ""], gpu), /--kernels: unknown kernel ""/);
  throws(() => parseBenchArgs(["--arch", "resnet19"], gpu), { name: "UsageError", message: /--arch must be one of/ });
  throws(() => parseBenchArgs(["--stock-steps", "1"], gpu), {
    name: "UsageError",
    message: /--stock-steps was removed/,
  });
});

Deno.test("bench exits 2 on an unknown flag, also in --data mode", async () => {
  assertEquals(await main(["--frobnicate"]), 2);
  assertEquals(await main(["--kernels", "Conv9D"]), 2);
  assertEquals(await main(["--steps", "x"]), 2);
  // --data hands the remaining flags to the pipeline bench, which rejects what it does not know.
  assertEquals(await main(["--data", "--frobnicate"]), 2);
});

Deno.test("bench checks its flags before it looks for a GPU: exit 2, not a WebGPU error, on a machine without one", async () => {
  // No Vulkan driver and no EGL vendor: requestAdapter() finds nothing, as on a machine without Mesa or a GPU.
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../tasks/bench.ts", import.meta.url).pathname, "--frobnicate"],
    env: { VK_ICD_FILENAMES: "/nonexistent.json", __EGL_VENDOR_LIBRARY_FILENAMES: "/nonexistent.json", NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 2, err);
  assert(/^error: .*--frobnicate.* \(see --help\)\n/.test(err), err); // one "error:" line, as every task says it
  // And without a bad flag the missing adapter is one "error:" line, exit 1, no stack trace.
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../tasks/bench.ts", import.meta.url).pathname, "--skip-train"],
    env: { VK_ICD_FILENAMES: "/nonexistent.json", __EGL_VENDOR_LIBRARY_FILENAMES: "/nonexistent.json", NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(run.stderr);
  assertEquals(run.code, 1, text);
  assert(/^error: /.test(text) && !text.includes("    at "), text);
});

Deno.test("formatReport shows both columns and the speed-up when stock was run", () => {
  const t = { ms: 2, tflops: 1, reps: 5 };
  const counts = {
    dispatchesPerStep: 612,
    submitsPerStep: 41,
    buffersCreatedPerStep: 2,
    bytesUploadedPerStep: 20480,
    bindGroupsPerStep: 612,
    cpuMsPerStep: 95,
    submitMsPerStep: 12,
  };
  const train: TrainBenchResult = { imagesPerSecond: 300, msPerStep: 10, steps: 3, lastLoss: 2.3, ...counts };
  const text = formatReport({
    adapter: "test adapter",
    isFallbackAdapter: false,
    date: "2026-11-23",
    config: parseBenchArgs([], { isFallbackAdapter: false }),
    train,
    stock: { train: { ...train, imagesPerSecond: 100, msPerStep: 30, dispatchesPerStep: 1500 } },
    ops: [{ name: "conv", kind: "conv2d", xShape: [1], wShape: [1], ours: t, stock: { ...t, ms: 8 } }],
  });
  assert(text.includes("test adapter"));
  assert(text.includes("speed-up: 3.00x"), text);
  assert(text.includes("4.00x"), text);
  assert(/dispatches\s+612\.0\s+1500\.0/.test(text), text);
  assert(/KiB uploaded\s+20\.0\s+20\.0/.test(text), text);
  assert(/CPU ms \(JS \+ encoding\)\s+95\.0/.test(text), text);
  assert(/ms inside queue\.submit\s+12\.0/.test(text), text);
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
  // One timed step: whole counts (pinned exactly in train_step_counts_test.ts); the CPU time is a number, unchecked.
  const t = report.train;
  for (const n of [t.dispatchesPerStep, t.submitsPerStep, t.bindGroupsPerStep, t.bytesUploadedPerStep]) {
    assert(Number.isInteger(n) && n > 0, JSON.stringify(t));
  }
  assert(Number.isInteger(t.buffersCreatedPerStep), JSON.stringify(t));
  assert(Number.isFinite(t.cpuMsPerStep) && Number.isFinite(t.submitMsPerStep), JSON.stringify(t));
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
  // 14 ops of the 3x3/1 stages and the matmul, then 3x3/2, 1x1/2 and 7x7/2 convolutions, three passes each.
  assert(report.ops && report.ops.length === 14 + 9, `${report.ops?.length} ops`);
  for (const kernel of ["conv3x3/2", "conv1x1/2", "conv7x7/2"]) {
    assertEquals(report.ops.filter((r) => r.name.startsWith(kernel)).length, 3, kernel);
  }
  for (const row of report.ops) {
    assert(row.relError !== undefined && row.relError < 1e-4, `${row.name}: relative error ${row.relError}`);
    assertEquals(row.stock?.reps, row.ours.reps, `${row.name}: the same repetitions on both sides`);
  }
  assert(/rel err/.test(formatReport(report)));
});

Deno.test("--kernels picks which of ours the run uses, and stock runs the same steps as ours", async () => {
  const adapter = await initWebGPU();
  const args = ["--batch-size", "2", "--input", "8", "--width", "4", "--steps", "2", "--warmup", "1"];
  const config = { ...parseBenchArgs([...args, "--kernels", "Conv2D", "--compare-stock"], adapter), ops: false };
  let during: string[] = [];
  const report = await runBench(config, adapter, (l) => {
    if (l.includes("training step, ours")) during = activeFastKernels();
  });
  assertEquals(during, ["Conv2D"]);
  assertEquals([report.train?.steps, report.stock?.train?.steps], [2, 2]);
  assert(formatReport(report).includes("our kernels: Conv2D"), formatReport(report));
});

Deno.test("resnetStridedOpCases: the strided, 1x1 and 7x7 convolutions of a ResNet, three passes each", () => {
  const cases = resnetStridedOpCases(4, 8, 16, 32);
  assertEquals(cases.map((c) => [c.xShape, c.wShape, c.stride, c.pad]), [
    ...Array(3).fill([[4, 16, 16, 8], [3, 3, 8, 16], 2, 1]),
    ...Array(3).fill([[4, 16, 16, 8], [1, 1, 8, 16], 2, 0]),
    ...Array(3).fill([[4, 32, 32, 3], [7, 7, 3, 8], 2, 3]),
  ]);
  assertEquals(cases.slice(0, 3).map((c) => c.kind), ["conv2d", "conv2dBackpropInput", "conv2dBackpropFilter"]);
  assertEquals(cases[7].name, "conv7x7/2 bwd-input 3->8ch 32x32");
});
