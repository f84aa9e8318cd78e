import { assert, assertEquals, rejects } from "../assert.ts";
import { type EpochRecord, RunLog, summaryCsv } from "../../train/run_log.ts";
import { formatDuration, formatEpochSummary, formatLr, formatProgress } from "../../tasks/progress.ts";

function record(epoch: number, extra: Partial<EpochRecord> = {}): EpochRecord {
  return {
    epoch,
    step: epoch * 10,
    lr: 0.1 / epoch,
    train_loss: 2 / epoch,
    train_top1: 0.1 * epoch,
    time: 1.5,
    images_per_second: 100 + epoch,
    ...extra,
  };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "run_log_test_" });
  try {
    await fn(`${dir}/runs/x`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("RunLog writes config.json, metrics.jsonl and summary.csv", async () => {
  await withDir(async (dir) => {
    const log = new RunLog(dir);
    assertEquals(await log.readConfig(), null);
    assertEquals(await log.readMetrics(), []);
    const config = { arch: "resnet18", lr: 0.2, milestones: [1, 2], resume: null };
    await log.writeConfig(config);
    assertEquals(await log.readConfig(), config);
    await log.appendEpoch(record(1, { val_loss: 1.5, val_top1: 0.5, val_top5: 0.9 }));
    await log.appendEpoch(record(2, { val_loss: 1.25, val_top1: 0.625, val_top5: 0.95 }));
    const lines = (await Deno.readTextFile(log.metricsPath)).split("\n");
    assertEquals(lines.length, 3, "two lines and a final newline");
    assertEquals(lines[2], "");
    assertEquals(JSON.parse(lines[1]).val_top1, 0.625);
    assertEquals(
      await Deno.readTextFile(log.summaryPath),
      "epoch,step,lr,train_loss,train_top1,val_loss,val_top1,val_top5,time,images_per_second\n" +
        "1,10,0.1,2,0.1,1.5,0.5,0.9,1.5,101\n" +
        "2,20,0.05,1,0.2,1.25,0.625,0.95,1.5,102\n",
    );
    assertEquals(await listDir(dir), ["config.json", "metrics.jsonl", "summary.csv"], "no temporary files left");
  });
});

Deno.test("truncateAfter drops later epochs so a resumed run's logs equal an uninterrupted run's", async () => {
  await withDir(async (dir) => {
    const straight = new RunLog(`${dir}/a`);
    for (let e = 1; e <= 4; e++) await straight.appendEpoch(record(e, { test_top1: e / 10 }));

    const resumed = new RunLog(`${dir}/b`);
    for (let e = 1; e <= 3; e++) await resumed.appendEpoch(record(e, { test_top1: e / 10 }));
    // Interrupted after logging epoch 3 but before its checkpoint: resume from the epoch-2 checkpoint.
    await rejects(resumed.appendEpoch(record(3)), /epoch 3 is not after the last logged epoch 3.*truncateAfter\(2\)/);
    assertEquals(await resumed.truncateAfter(2), 1);
    assertEquals((await resumed.readMetrics()).map((r) => r.epoch), [1, 2]);
    for (let e = 3; e <= 4; e++) await resumed.appendEpoch(record(e, { test_top1: e / 10 }));

    assertEquals(await Deno.readTextFile(resumed.metricsPath), await Deno.readTextFile(straight.metricsPath));
    assertEquals(await Deno.readTextFile(resumed.summaryPath), await Deno.readTextFile(straight.summaryPath));
    assertEquals(await resumed.truncateAfter(10), 0, "nothing after epoch 10");
    assertEquals(await resumed.truncateAfter(0), 4);
    assertEquals(
      await Deno.readTextFile(resumed.summaryPath),
      "epoch,step,lr,train_loss,train_top1,time,images_per_second\n",
    );
    await rejects(resumed.truncateAfter(-1), /epoch must be an integer >= 0, got -1/);
  });
});

Deno.test("bad metrics lines and records are errors naming the file and line or field", async () => {
  await withDir(async (dir) => {
    const log = new RunLog(dir);
    await log.appendEpoch(record(1));
    await Deno.writeTextFile(log.metricsPath, '{"epoch": 2, "step": 1}\n', { append: true });
    await rejects(log.readMetrics(), new RegExp(`${log.metricsPath}:2: field "lr" must be a number, got undefined`));
    await Deno.writeTextFile(log.metricsPath, JSON.stringify(record(1)) + "\n{oops\n");
    await rejects(log.readMetrics(), new RegExp(`${log.metricsPath}:2: not valid JSON`));
    await rejects(log.appendEpoch({ ...record(5), train_loss: "x" as unknown as number }), /field "train_loss"/);
    await Deno.writeTextFile(log.configPath, "{");
    await rejects(log.readConfig(), /config.json: not valid JSON/);
  });
});

Deno.test("readMetricsLenient keeps the good records and names each skipped line, an unterminated last one as such", async () => {
  await withDir(async (dir) => {
    const log = new RunLog(dir);
    assertEquals(await log.readMetricsLenient(), { records: [], skipped: [] });
    await log.appendEpoch(record(1));
    await log.appendEpoch(record(2));
    // A foreign line in the middle and a last line cut mid-write (no newline yet).
    const [one, two] = (await Deno.readTextFile(log.metricsPath)).trim().split("\n");
    await Deno.writeTextFile(
      log.metricsPath,
      `${one}\n{"epoch": 9}\n${two}\n${JSON.stringify(record(3)).slice(0, 20)}`,
    );
    const { records, skipped } = await log.readMetricsLenient();
    assertEquals(records, [record(1), record(2)]);
    assertEquals(skipped.length, 2, skipped.join("\n"));
    assert(skipped[0].startsWith(`${log.metricsPath}:2: field "step"`), skipped[0]);
    assert(!skipped[0].includes("incomplete"), skipped[0]);
    assert(skipped[1].startsWith(`${log.metricsPath}:4: not valid JSON`), skipped[1]);
    assert(skipped[1].endsWith("an incomplete last line (still being written?)"), skipped[1]);
    await rejects(
      log.readMetrics(),
      new RegExp(`${log.metricsPath}:2: field "step"`),
      "the strict reader still throws",
    );
  });
});

Deno.test("summaryCsv: required columns always, optional ones when present, empty cells for gaps", () => {
  assertEquals(summaryCsv([]), "epoch,step,lr,train_loss,train_top1,time,images_per_second\n");
  const csv = summaryCsv([record(1), record(2, { test_loss: 0.5, test_top1: 0.75, test_top5: 1 })]);
  assertEquals(
    csv.split("\n")[0],
    "epoch,step,lr,train_loss,train_top1,test_loss,test_top1,test_top5,time,images_per_second",
  );
  assertEquals(csv.split("\n")[1], "1,10,0.1,2,0.1,,,,1.5,101");
});

Deno.test("formatDuration: m:ss, h:mm:ss, unknown", () => {
  const cases: [number, string][] = [
    [0, "0:00"],
    [59.4, "0:59"],
    [59.6, "1:00"],
    [61, "1:01"],
    [3599, "59:59"],
    [3600, "1:00:00"],
    [3661, "1:01:01"],
    [90061, "25:01:01"],
    [-1, "--:--"],
    [NaN, "--:--"],
    [Infinity, "--:--"],
  ];
  for (const [s, want] of cases) assertEquals(formatDuration(s), want, String(s));
});

Deno.test("formatLr keeps 4 significant digits", () => {
  assertEquals(formatLr(0.2), "0.2");
  assertEquals(formatLr(0.1976494117647059), "0.1976");
  assertEquals(formatLr(0.0002), "2.000e-4");
  assertEquals(formatLr(0), "0");
});

Deno.test("formatProgress: plain lines for CI, a fixed-width \\r bar for terminals", () => {
  const state = {
    epoch: 3,
    epochs: 30,
    batch: 45,
    batches: 98,
    loss: 1.23456,
    acc: 0.5678,
    lr: 0.1,
    imagesPerSecond: 1234.4,
    etaSeconds: 83,
  };
  assertEquals(
    formatProgress(state, { tty: false }),
    "epoch 3/30 batch 45/98 loss 1.2346 acc 56.78% lr 0.1 1234 img/s ETA 1:23",
  );
  for (const width of [80, 120, 30]) {
    const line = formatProgress(state, { tty: true, width });
    assert(line.startsWith("\r"), "overwrites the line");
    assert(!line.includes("\n"));
    assertEquals(line.length, width, `exactly width - 1 columns after \\r (width ${width})`);
  }
  const wide = formatProgress(state, { tty: true, width: 120 });
  const bar = /\[([=> ]+)\]/.exec(wide)![1];
  const filled = bar.indexOf(">");
  assert(Math.abs(filled / bar.length - 45 / 98) < 0.05, `bar ${bar} shows 45/98`);
  const start = formatProgress({ ...state, batch: 0, loss: null, acc: null, etaSeconds: NaN }, { tty: false });
  assertEquals(start, "epoch 3/30 batch 0/98 loss - acc - lr 0.1 1234 img/s ETA --:--");
  const end = formatProgress({ ...state, batch: 98 }, { tty: true, width: 80 });
  assert(/\[=+\]/.test(end), "a full bar at the end");
});

Deno.test("formatEpochSummary reports train, val and test metrics", () => {
  const line = formatEpochSummary({
    epoch: 3,
    epochs: 30,
    trainLoss: 1.5,
    trainTop1: 0.5,
    val: { loss: 1.25, top1: 0.6, top5: 0.95 },
    test: { loss: 1.3, top1: 0.58, top5: 0.94 },
    lr: 0.05,
    seconds: 72,
    imagesPerSecond: 700.2,
    best: true,
  });
  assertEquals(
    line,
    "epoch 3/30 train loss 1.5000 top1 50.00% | val loss 1.2500 top1 60.00% top5 95.00% | " +
      "test loss 1.3000 top1 58.00% top5 94.00% | lr 0.05 | 1:12 700 img/s *",
  );
  const noVal = formatEpochSummary({
    epoch: 1,
    epochs: 2,
    trainLoss: NaN,
    trainTop1: 0,
    lr: 0.1,
    seconds: 1,
    imagesPerSecond: 1,
  });
  assertEquals(noVal, "epoch 1/2 train loss NaN top1 0.00% | lr 0.1 | 0:01 1 img/s");
  const withEma = formatEpochSummary({
    epoch: 1,
    epochs: 2,
    trainLoss: 2,
    trainTop1: 0.25,
    test: { loss: 1.3, top1: 0.58, top5: 0.94 },
    emaTest: { loss: 1.2, top1: 0.6, top5: 0.95 },
    lr: 0.1,
    seconds: 1,
    imagesPerSecond: 1,
  });
  assertEquals(
    withEma,
    "epoch 1/2 train loss 2.0000 top1 25.00% | test loss 1.3000 top1 58.00% top5 94.00% | " +
      "ema test loss 1.2000 top1 60.00% top5 95.00% | lr 0.1 | 0:01 1 img/s",
  );
});
