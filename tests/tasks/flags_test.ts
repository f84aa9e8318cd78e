import { assert, assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { UsageError } from "../../tasks/args.ts";
import { evalHelp, parseEvalArgs } from "../../tasks/eval_flags.ts";
import { parseTrainArgs, trainHelp } from "../../tasks/train_flags.ts";
import { RECIPE_SPECS, RECIPES, type TrainConfig, trainConfigFromJSON } from "../../train/config.ts";
import { learningRateAt, scheduleConfigFor } from "../../train/lr_schedule.ts";

function train(...argv: string[]): TrainConfig {
  const c = parseTrainArgs(argv);
  if (c === "help") throw new Error("unexpected help");
  return c;
}

/** Asserts a UsageError whose flag is `flag` and whose message matches `re`. */
function usage(argv: string[], flag: string | undefined, re: RegExp) {
  throws(() => parseTrainArgs(argv), (e: unknown) => {
    assert(e instanceof UsageError, `${argv.join(" ")}: ${e}`);
    assertStrictEquals(e.flag, flag, `${argv.join(" ")}: flag of "${e.message}"`);
    assert(re.test(e.message), `${argv.join(" ")}: message "${e.message}" does not match ${re}`);
    if (flag) assert(e.message.includes(flag), `message names ${flag}: ${e.message}`);
    return true;
  });
}

Deno.test("no flags: ResNet-18 on CIFAR-10 with the reference recipe", () => {
  const c = train();
  assertEquals(c, {
    arch: "resnet18",
    dataset: "cifar10",
    dataDir: "data",
    recipe: "cifar",
    width: 64,
    stem: "cifar",
    imageSize: 32,
    transforms: "cifar",
    decoder: "sharp",
    autoAugment: "none",
    raNumOps: 2,
    raMagnitude: 9,
    randomErase: 0,
    mixupAlpha: 0,
    cutmixAlpha: 0,
    raSampler: false,
    raReps: 3,
    modelEma: false,
    modelEmaDecay: 0.99998,
    modelEmaSteps: 32,
    epochs: 30,
    batchSize: 512,
    lr: 0.2,
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    weightDecayAll: false,
    schedule: "onecycle",
    warmupEpochs: 0,
    milestones: [],
    gamma: 0.1,
    stepSize: 30,
    minLr: 0,
    pctStart: 0.15,
    divFactor: 10,
    finalDivFactor: 100,
    labelSmoothing: 0.1,
    clipGradNorm: 0,
    seed: 0,
    valSplit: 0,
    out: "runs/resnet18-cifar10",
    resume: null,
    init: null,
    keep: 3,
    checkpointEvery: 0,
    zeroInitResidual: false,
    logEvery: 20,
    workers: 2,
    collectiveTimeout: 600,
    allowConfigChange: false,
  });
  assertEquals(JSON.parse(JSON.stringify(c)), c, "JSON-serialisable");
  // The reference one-cycle: 0.02 -> 0.2 over 15 % of the steps -> 0.0002.
  const s = scheduleConfigFor(c, 98);
  assertEquals(s.totalSteps, 30 * 98);
  assert(Math.abs(learningRateAt(0, s) - 0.02) < 1e-15);
  assert(Math.abs(learningRateAt(s.totalSteps - 1, s) - 0.0002) < 1e-15);
});

Deno.test("dataset-dependent defaults: folder is torchvision's ImageNet recipe, synthetic is short", () => {
  const f = train("--dataset", "folder", "--data-dir", "/data/imagenet", "--arch", "resnet50");
  assertEquals(
    [f.stem, f.imageSize, f.epochs, f.batchSize, f.lr, f.momentum, f.nesterov, f.weightDecay, f.schedule],
    ["imagenet", 224, 90, 256, 0.1, 0.9, false, 1e-4, "step"],
  );
  assertEquals([f.stepSize, f.gamma, f.labelSmoothing, f.out], [30, 0.1, 0, "runs/resnet50-folder"]);
  assertEquals(f.checkpointEvery, 1000);
  const s = scheduleConfigFor(f, 10);
  assertEquals(learningRateAt(299, s), 0.1);
  assert(Math.abs(learningRateAt(300, s) - 0.01) < 1e-15, "divided by 10 at epoch 30");
  const syn = train("--dataset", "synthetic");
  assertEquals([syn.stem, syn.epochs, syn.batchSize, syn.width, syn.dataDir], ["cifar", 3, 32, 4, ""]);
  assertEquals(train("--dataset", "cifar100").dataDir, "data", "where `deno task prepare` puts the archives");
  assertEquals(train("--dataset", "folder", "--data-dir", "d", "--stem", "cifar").stem, "cifar");
  assertEquals([f.transforms, f.decoder, train().transforms, syn.transforms], ["imagenet", "sharp", "cifar", "cifar"]);
  assertEquals([f.recipe, syn.recipe, train().recipe], ["classic", "cifar", "cifar"], "each dataset's default recipe");
});

Deno.test("--recipe sets its documented group of defaults; every flag still overrides them", () => {
  const imagenet = ["--dataset", "folder", "--data-dir", "d"];
  const n = train(...imagenet, "--recipe", "new");
  assertEquals(
    [n.recipe, n.epochs, n.batchSize, n.lr, n.momentum, n.nesterov, n.weightDecay, n.schedule, n.warmupEpochs],
    ["new", 600, 1024, 0.5, 0.9, false, 2e-5, "cosine", 5],
  );
  assertEquals([n.minLr, n.labelSmoothing, n.autoAugment, n.randomErase], [0, 0.1, "ta_wide", 0.1]);
  assertEquals([n.mixupAlpha, n.cutmixAlpha, n.modelEma, n.modelEmaDecay, n.modelEmaSteps], [
    0.2,
    1,
    true,
    0.99998,
    32,
  ]);
  assertEquals([n.raSampler, n.raReps], [true, 4]);
  // The dataset still decides the data fields.
  assertEquals([n.stem, n.imageSize, n.transforms, n.checkpointEvery, n.logEvery], [
    "imagenet",
    224,
    "imagenet",
    1000,
    50,
  ]);
  // Each field of the recipe can be overridden, and the rest of the recipe stays.
  const o = train(...imagenet, "--recipe", "new", "--epochs", "100", "--auto-augment", "ra", "--random-erase", "0");
  assertEquals([o.epochs, o.autoAugment, o.randomErase, o.lr, o.schedule], [100, "ra", 0, 0.5, "cosine"]);
  assertEquals(train(...imagenet, "--recipe", "new", "--auto-augment", "none").autoAugment, "none");
  // classic is the folder default; naming it changes nothing; the CIFAR recipe on a folder, the classic on CIFAR.
  assertEquals(train(...imagenet, "--recipe", "classic"), train(...imagenet));
  const cifarOnFolder = train(...imagenet, "--recipe", "cifar");
  assertEquals([cifarOnFolder.schedule, cifarOnFolder.lr, cifarOnFolder.imageSize], ["onecycle", 0.2, 224]);
  const classicOnCifar = train("--recipe", "classic");
  assertEquals([classicOnCifar.schedule, classicOnCifar.epochs, classicOnCifar.stem], ["step", 90, "cifar"]);
  // synthetic shortens the CIFAR recipe only: another recipe named for it is that recipe.
  const syn = train("--dataset", "synthetic", "--recipe", "new");
  assertEquals([syn.epochs, syn.batchSize, syn.autoAugment, syn.width], [600, 1024, "ta_wide", 4]);
  assertEquals([train("--dataset", "synthetic", "--recipe", "cifar").epochs], [3]);
  // The new recipe's warm-up then cosine, per step: 0.005 at step 0, 0.5 after 5 epochs, about 0 at the end.
  const s = scheduleConfigFor(n, 10);
  assert(Math.abs(learningRateAt(0, s) - 0.005) < 1e-15);
  assertEquals(learningRateAt(50, s), 0.5);
  assert(learningRateAt(s.totalSteps - 1, s) < 1e-5);
  // Every recipe is complete data: the same fields, each valid for its rule.
  for (const r of RECIPES) {
    assertEquals(Object.keys(RECIPE_SPECS[r].fields).sort(), Object.keys(RECIPE_SPECS.cifar.fields).sort());
    const c = train("--recipe", r, ...(r === "cifar" ? [] : imagenet));
    assertEquals(trainConfigFromJSON(JSON.parse(JSON.stringify(c)), r), c);
  }
});

Deno.test("--auto-augment and --random-erase: values, RandAugment's N and M, and their contradictions", () => {
  const ra = train("--auto-augment", "ra", "--ra-num-ops", "3", "--ra-magnitude", "15", "--random-erase", "0.25");
  assertEquals([ra.autoAugment, ra.raNumOps, ra.raMagnitude, ra.randomErase], ["ra", 3, 15, 0.25]);
  for (const policy of ["ta_wide", "imagenet", "cifar10", "none"]) {
    assertEquals(train("--auto-augment", policy).autoAugment, policy);
  }
  usage(["--auto-augment", "svhn"], "--auto-augment", /one of none, ta_wide, ra, imagenet, cifar10; got "svhn"/);
  usage(["--auto-augment", "ra", "--ra-magnitude", "31"], "--ra-magnitude", /must be in \[0, 30\], got "31"/);
  usage(["--random-erase", "1.5"], "--random-erase", /must be in \[0, 1\], got "1.5"/);
  usage(["--ra-magnitude", "5"], "--ra-magnitude", /only applies to --auto-augment ra \(RandAugment\), not none/);
  usage(["--auto-augment", "ta_wide", "--ra-num-ops", "1"], "--ra-num-ops", /only applies to --auto-augment ra/);
  usage(["--recipe", "timm"], "--recipe", /--recipe must be one of cifar, classic, new; got "timm"/);
});

Deno.test("--mixup-alpha, --cutmix-alpha and --model-ema: values, defaults (off) and their contradictions", () => {
  const d = train();
  assertEquals([d.mixupAlpha, d.cutmixAlpha, d.modelEma, d.modelEmaDecay, d.modelEmaSteps], [0, 0, false, 0.99998, 32]);
  const c = train("--mixup-alpha", "0.4", "--cutmix-alpha", "1", "--model-ema", "--model-ema-decay", "0.999");
  assertEquals([c.mixupAlpha, c.cutmixAlpha, c.modelEma, c.modelEmaDecay], [0.4, 1, true, 0.999]);
  assertEquals(train("--model-ema", "--model-ema-steps", "8").modelEmaSteps, 8);
  usage(["--mixup-alpha=-1"], "--mixup-alpha", /must be in \[0, 1000\], got "-1"/);
  usage(["--model-ema", "--model-ema-decay", "1"], "--model-ema-decay", /must be in \[0, 1\), got "1"/);
  usage(["--model-ema", "--model-ema-steps", "0"], "--model-ema-steps", /must be in \[1, 1000000000\], got "0"/);
  usage(["--model-ema-decay", "0.9"], "--model-ema-decay", /--model-ema-decay only applies with --model-ema/);
  usage(["--model-ema-steps", "4"], "--model-ema-steps", /only applies with --model-ema/);
  assertEquals([train("--ra-sampler").raReps, train("--ra-sampler", "--ra-reps", "2").raReps], [3, 2]);
  usage(["--ra-reps", "2"], "--ra-reps", /--ra-reps only applies with --ra-sampler/);
  usage(["--ra-sampler", "--ra-reps", "0"], "--ra-reps", /must be in \[1, 1000\], got "0"/);
  // The new recipe turns them on; each can be turned off.
  const off = train("--recipe", "new", "--no-model-ema", "--mixup-alpha", "0", "--cutmix-alpha", "0");
  assertEquals([off.modelEma, off.mixupAlpha, off.cutmixAlpha], [false, 0, 0]);
  // A configuration written before these fields existed reads as all off.
  const old = JSON.parse(JSON.stringify(d));
  for (const k of ["mixupAlpha", "cutmixAlpha", "raSampler", "raReps", "modelEma", "modelEmaDecay", "modelEmaSteps"]) {
    delete old[k];
  }
  assertEquals(trainConfigFromJSON(old, "old config.json"), d);
});

Deno.test("a folder dataset with --transforms cifar trains with the CIFAR recipe", () => {
  const c = train("--dataset", "folder", "--data-dir", "cifar10-jpg", "--transforms", "cifar", "--decoder", "js");
  const reference = train();
  assertEquals(
    [c.stem, c.imageSize, c.epochs, c.batchSize, c.lr, c.schedule, c.nesterov, c.weightDecay, c.labelSmoothing],
    ["cifar", 32, 30, 512, 0.2, "onecycle", true, 5e-4, 0.1],
  );
  assertEquals({ ...c, dataset: "cifar10", dataDir: "data", decoder: "sharp", out: reference.out }, reference);
  assertEquals([c.transforms, c.decoder, c.dataDir, c.checkpointEvery], ["cifar", "js", "cifar10-jpg", 0]);
});

Deno.test("flags override the recipe and are converted to their types", () => {
  const c = train(
    "--epochs=12",
    "--batch-size",
    "64",
    "--lr",
    "0.05",
    "--no-nesterov",
    "--weight-decay",
    "0",
    "--schedule",
    "multistep",
    "--milestones",
    "4, 8",
    "--gamma",
    "0.2",
    "--warmup-epochs",
    "2",
    "--label-smoothing",
    "0",
    "--clip-grad-norm",
    "5",
    "--seed",
    "7",
    "--val-split",
    "5000",
    "--out",
    "runs/x",
    "--resume",
    "auto",
    "--keep",
    "5",
    "--width",
    "16",
    "--zero-init-residual",
    "--log-every",
    "3",
    "--workers",
    "0",
    "--image-size",
    "40",
    "--dataset", // --image-size applies to folder datasets only
    "folder",
    "--data-dir",
    "d",
  );
  assertEquals(
    [c.epochs, c.batchSize, c.lr, c.nesterov, c.weightDecay, c.schedule, c.milestones, c.gamma, c.warmupEpochs],
    [12, 64, 0.05, false, 0, "multistep", [4, 8], 0.2, 2],
  );
  assertEquals(
    [c.labelSmoothing, c.clipGradNorm, c.seed, c.valSplit, c.out, c.resume, c.keep, c.width, c.zeroInitResidual],
    [0, 5, 7, 5000, "runs/x", "auto", 5, 16, true],
  );
  assertEquals([c.logEvery, c.workers, c.imageSize], [3, 0, 40]);
  assertEquals(train("--checkpoint-every", "25").checkpointEvery, 25);
  const s = scheduleConfigFor(c, 5);
  assertEquals([s.kind, s.warmupSteps, s.totalSteps, s.milestones, s.baseLr], ["multistep", 10, 60, [4, 8], 0.05]);
  const cos = train("--schedule", "cosine", "--min-lr", "0.001", "--warmup-epochs", "1", "--weight-decay-all");
  assertEquals([cos.schedule, cos.minLr, cos.weightDecayAll], ["cosine", 0.001, true]);
  const one = train("--pct-start", "0.3", "--div-factor", "25", "--final-div-factor", "1e4");
  assertEquals([one.pctStart, one.divFactor, one.finalDivFactor], [0.3, 25, 1e4]);
  assertEquals(train("--init", "w.safetensors").init, "w.safetensors");
  assertEquals(train("--schedule", "step", "--step-size", "10").stepSize, 10);
});

Deno.test("unknown flags, positionals and missing values are UsageErrors naming the flag", () => {
  usage(["--learning-rate", "0.1"], "--learning-rate", /Unknown option '--learning-rate'$/);
  usage(["--batchsize", "64"], "--batchsize", /Unknown option '--batchsize'; did you mean --batch-size\?$/);
  usage(["-x"], "-x", /Unknown option '-x'/);
  usage(["--lr"], "--lr", /argument missing/);
  usage(["resnet18"], undefined, /Unexpected argument 'resnet18'/);
  usage(["--nesterov=yes"], "--nesterov", /does not take an argument/);
});

Deno.test("bad values are UsageErrors naming the flag and the value", () => {
  usage(["--lr", "abc"], "--lr", /--lr expects a number, got "abc"/);
  usage(["--lr", "0"], "--lr", /--lr must be in \(0, 1000\], got "0"/);
  usage(["--lr="], "--lr", /--lr expects a number, got ""/);
  usage(["--epochs", "2.5"], "--epochs", /--epochs expects an integer, got "2.5"/);
  usage(["--epochs", "0"], "--epochs", /--epochs must be in \[1, 1000000\], got "0"/);
  usage(["--batch-size=-4"], "--batch-size", /--batch-size must be in \[1, 1000000\], got "-4"/);
  usage(["--batch-size", "-4"], "--batch-size", /--batch-size must be in \[1, 1000000\], got "-4"/);
  usage(["--epochs", "-1"], "--epochs", /--epochs must be in \[1, 1000000\], got "-1"/);
  usage(["--epochs=-1"], "--epochs", /--epochs must be in \[1, 1000000\], got "-1"/);
  usage(["--lr", "-0.5"], "--lr", /--lr must be in \(0, 1000\], got "-0.5"/);
  usage(["--out", "--lr", "0.1"], "--out", /--out expects a value; received "--lr"/);
  usage(["--momentum", "1"], "--momentum", /--momentum must be in \[0, 1\), got "1"/);
  usage(["--label-smoothing", "1"], "--label-smoothing", /got "1"/);
  usage(["--val-split=-1"], "--val-split", /got "-1"/);
  usage(["--val-split", "0.1"], "--val-split", /expects an integer, got "0.1"/);
  usage(["--seed=-1"], "--seed", /got "-1"/);
  usage(["--arch", "vgg16"], "--arch", /--arch must be one of resnet18, .*resnet152; got "vgg16"/);
  usage(["--dataset", "mnist"], "--dataset", /--dataset must be one of cifar10, cifar100, folder, imagenet, synthetic/);
  usage(["--schedule", "linear"], "--schedule", /--schedule must be one of constant, step, multistep, cosine/);
  usage(["--schedule", "multistep", "--milestones", "3,x"], "--milestones", /comma-separated positive integers/);
  usage(["--schedule", "multistep", "--milestones", "5,3"], "--milestones", /strictly increasing, got "5,3"/);
  usage(["--out", ""], "--out", /--out needs a non-empty value/);
});

Deno.test("contradictory flags are UsageErrors naming a flag", () => {
  usage(["--milestones", "10,20"], "--milestones", /only applies to --schedule multistep, not onecycle/);
  usage(["--schedule", "multistep"], "--milestones", /--schedule multistep needs --milestones/);
  usage(["--schedule", "multistep", "--milestones", "10,30"], "--milestones", /not reached within --epochs 30/);
  usage(["--schedule", "cosine", "--warmup-epochs", "30"], "--warmup-epochs", /must be less than --epochs 30/);
  usage(["--warmup-epochs", "2"], "--warmup-epochs", /cannot be combined with --schedule onecycle/);
  // A recipe's warm-up gives way to one-cycle chosen on top of it (only an explicit one contradicts), and a recipe
  // warm-up longer than the run says that it is the recipe's.
  assertEquals(train("--recipe", "new", "--schedule", "onecycle").warmupEpochs, 0);
  usage(["--recipe", "new", "--schedule", "onecycle", "--warmup-epochs", "1"], "--warmup-epochs", /cannot be combined/);
  usage(
    ["--recipe", "new", "--epochs", "5"],
    "--warmup-epochs",
    /5 must be less than --epochs 5 \(the recipe's default/,
  );
  usage(["--resume", "auto", "--init", "w.safetensors"], "--resume", /--resume and --init contradict/);
  usage(["--allow-config-change"], "--allow-config-change", /only applies when resuming \(--resume\)/);
  usage(["--step-size", "10"], "--step-size", /only applies to --schedule step/);
  usage(["--gamma", "0.5"], "--gamma", /only applies to --schedule step or multistep, not onecycle/);
  usage(["--schedule", "cosine", "--pct-start", "0.2"], "--pct-start", /only applies to --schedule onecycle/);
  usage(["--schedule", "step", "--div-factor", "5"], "--div-factor", /only applies to --schedule onecycle/);
  usage(["--final-div-factor", "5", "--schedule", "constant"], "--final-div-factor", /only applies/);
  usage(["--min-lr", "0.1"], "--min-lr", /only applies to --schedule cosine/);
  usage(["--momentum", "0"], "--nesterov", /--nesterov needs --momentum > 0/);
  usage(
    ["--dataset", "folder"],
    "--data-dir",
    /--dataset folder needs --data-dir \(a folder holding train\/<class>\/ and val\/<class>\/ or test\/<class>\/ .*\.tar/,
  );
  usage(["--dataset", "synthetic", "--data-dir", "x"], "--data-dir", /does not apply to --dataset synthetic/);
  usage(["--weight-decay", "0", "--weight-decay-all"], "--weight-decay-all", /no effect with --weight-decay 0/);
  usage(["--transforms", "cifar"], "--transforms", /--transforms applies to --dataset folder and imagenet only/);
  usage(
    ["--dataset", "synthetic", "--decoder", "js"],
    "--decoder",
    /--decoder applies to --dataset folder and imagenet only/,
  );
  usage(["--dataset", "folder", "--data-dir", "d", "--decoder", "js"], "--decoder", /needs --transforms cifar/);
  // CIFAR-style data is 32x32 whatever the flag says: a size it would silently ignore is refused.
  for (const dataset of ["synthetic", "cifar10", "cifar100"]) {
    usage(
      ["--dataset", dataset, "--image-size", "64"],
      "--image-size",
      new RegExp(
        `--image-size 64 applies to --dataset folder and imagenet only \\(${dataset} images are always 32x32\\)`,
      ),
    );
  }
  assertEquals(train("--dataset", "synthetic", "--image-size", "32").imageSize, 32);
  assertEquals(train("--dataset", "folder", "--data-dir", "d", "--image-size", "64").imageSize, 64);
  usage(
    ["--dataset", "folder", "--data-dir", "d", "--transforms", "big"],
    "--transforms",
    /imagenet, cifar; got "big"/,
  );
  // The same flags without the contradiction are fine.
  assertEquals(train("--momentum", "0", "--no-nesterov").momentum, 0);
  assertEquals(train("--schedule", "multistep", "--milestones", "10,20").milestones, [10, 20]);
});

Deno.test("--help lists every flag with its default", () => {
  assertEquals(parseTrainArgs(["--help"]), "help");
  assertEquals(parseTrainArgs(["-h", "--lr", "3"]), "help");
  const help = trainHelp();
  const flags = [
    "arch",
    "dataset",
    "data-dir",
    "epochs",
    "batch-size",
    "lr",
    "momentum",
    "nesterov",
    "weight-decay",
    "weight-decay-all",
    "schedule",
    "warmup-epochs",
    "milestones",
    "gamma",
    "step-size",
    "min-lr",
    "pct-start",
    "div-factor",
    "final-div-factor",
    "label-smoothing",
    "clip-grad-norm",
    "seed",
    "val-split",
    "out",
    "width",
    "stem",
    "image-size",
    "resume",
    "init",
    "keep",
    "checkpoint-every",
    "zero-init-residual",
    "log-every",
    "workers",
    "recipe",
    "auto-augment",
    "ra-num-ops",
    "ra-magnitude",
    "random-erase",
    "mixup-alpha",
    "cutmix-alpha",
    "ra-sampler",
    "ra-reps",
    "model-ema",
    "model-ema-decay",
    "model-ema-steps",
  ];
  const lines = help.split("\n");
  for (const f of flags) {
    const i = lines.findIndex((l) => new RegExp(`^  --${f}\\b(?!-)`).test(l));
    assert(i >= 0, `--${f} is listed`);
    assert(/\(default: [^)]/.test(lines[i] + lines[i + 1]), `--${f} shows a default`);
    // Every listed flag is accepted by the parser (no help entry without a flag behind it).
    throws(() => parseTrainArgs([`--${f}-typo`]), UsageError);
  }
  assert(help.includes("0.2 for cifar10/cifar100/synthetic, 0.1 for folder"), "per-dataset defaults");
  assert(help.includes("onecycle for cifar10/cifar100/synthetic, step for folder"));
  assert(lines.every((l) => l.length <= 120), "fits 120 columns");
  // What a folder dataset's --data-dir holds: a class-folder tree per split, not one class per subfolder.
  assert(
    /--data-dir PATH +needed by folder \(train\/<class>\/ \+ val\/ or test\/<class>\/, or \.tar/.test(help),
    "--data-dir help",
  );
  // The recipes, each with its group of defaults as flags, and what the new one lacks.
  const recipes = help.slice(help.indexOf("\nRecipes"));
  for (const r of RECIPES) assert(new RegExp(`\\n  ${r} +${RECIPE_SPECS[r].summary.slice(0, 20)}`).test(recipes), r);
  assert(recipes.includes("--epochs 600 --batch-size 1024 --lr 0.5 --no-nesterov --weight-decay 0.00002"), recipes);
  assert(recipes.includes("--auto-augment ta_wide --random-erase 0.1"));
  assert(/--mixup-alpha 0\.2\s+--cutmix-alpha 1\s+--ra-sampler\s+--ra-reps 4\s+--model-ema/.test(recipes), recipes);
  assert(/missing: training at 176/.test(recipes), recipes);
  assert(!/missing:[^\n]*repeated/.test(recipes), "the repeated-augmentation sampler is no longer missing");
  assert(!/missing:[^\n]*mixup/.test(recipes), "mixup is no longer missing");
  assert(help.includes("train top-1 counts the dominant label"), "--help says how train top-1 is counted");
});

Deno.test("eval flags: --checkpoint required, split choices, bare-weights description", () => {
  assertEquals(parseEvalArgs(["--checkpoint", "runs/a/last.safetensors"]), {
    checkpoint: "runs/a/last.safetensors",
    dataset: null,
    dataDir: null,
    split: "test",
    saveLogits: null,
    json: false,
    outJson: null,
    batchSize: 256,
    arch: null,
    width: null,
    numClasses: null,
    stem: null,
    imageSize: null,
    transforms: null,
    decoder: null,
  });
  const e = parseEvalArgs([
    "--checkpoint=m.safetensors",
    "--dataset",
    "cifar100",
    "--split",
    "val",
    "--save-logits",
    "out.npy",
    "--json",
    "--batch-size",
    "100",
    "--arch",
    "resnet50",
    "--width",
    "32",
    "--num-classes",
    "100",
    "--stem",
    "cifar",
    "--data-dir",
    "d",
    "--out-json",
    "runs/a/eval.json",
  ]);
  assert(e !== "help");
  assertEquals(
    [
      e.dataset,
      e.split,
      e.saveLogits,
      e.json,
      e.batchSize,
      e.arch,
      e.width,
      e.numClasses,
      e.stem,
      e.dataDir,
      e.outJson,
    ],
    ["cifar100", "val", "out.npy", true, 100, "resnet50", 32, 100, "cifar", "d", "runs/a/eval.json"],
  );
  assertEquals(parseEvalArgs(["--help"]), "help");
  const bad: [string[], string, RegExp][] = [
    [[], "--checkpoint", /--checkpoint PATH is required/],
    [["--checkpoint", "x", "--split", "train"], "--split", /--split must be one of test, val; got "train"/],
    [["--checkpoint", "x", "--num-classes", "0"], "--num-classes", /got "0"/],
    [["--checkpoint", "x", "--epochs", "3"], "--epochs", /Unknown option '--epochs'/],
  ];
  for (const [argv, flag, re] of bad) {
    throws(() => parseEvalArgs(argv), (err: unknown) => {
      assert(err instanceof UsageError && err.flag === flag && re.test(err.message), String(err));
      return true;
    });
  }
  for (const f of ["checkpoint", "dataset", "data-dir", "split", "save-logits", "json", "out-json", "batch-size"]) {
    assert(evalHelp().includes(`--${f}`), f);
  }
});

Deno.test("trainConfigFromJSON accepts what parseTrainArgs produces and rejects broken configs naming the field", () => {
  for (const argv of [[], ["--dataset", "synthetic"], ["--dataset", "folder", "--data-dir", "d", "--resume", "auto"]]) {
    const c = train(...argv);
    assertEquals(trainConfigFromJSON(JSON.parse(JSON.stringify(c)), "x"), c);
  }
  const good = train("--schedule", "multistep", "--milestones", "10,20");
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ lr: "0.1" }, /meta: field "lr" must be a number, got "0.1"/],
    [{ lr: -1 }, /meta: lr must be in \(0, 1000\], got "-1"/],
    [{ epochs: 2.5 }, /meta: epochs expects an integer/],
    [{ nesterov: 1 }, /field "nesterov" must be a boolean, got 1/],
    [{ arch: "vgg" }, /meta: arch must be one of/],
    [{ milestones: "10" }, /field "milestones" must be an array of epochs/],
    [{ milestones: [20, 10] }, /meta: milestones must be strictly increasing/],
    [{ resume: 3 }, /field "resume" must be a string, got 3/],
    [{ extra: 1 }, /meta: unknown configuration field\(s\) extra/],
    [{ lr: undefined }, /field "lr" must be present/],
    [{ milestones: [] }, /meta: schedule multistep needs milestones/],
    [{ transforms: "imagenet" }, /meta: transforms applies to dataset folder and imagenet only \(cifar10 is always/],
    [{ decoder: "gif" }, /meta: decoder must be one of sharp, js/],
  ];
  for (const [patch, re] of cases) {
    const broken: Record<string, unknown> = { ...good, ...patch };
    if ("lr" in patch && patch.lr === undefined) delete broken.lr;
    throws(() => trainConfigFromJSON(broken, "meta"), re, JSON.stringify(patch));
  }
  throws(() => trainConfigFromJSON([1], "meta"), /meta: expected a training configuration object, got \[1\]/);
  // Checkpoints written before transforms/decoder (and recipe and the per-image augmentations) existed load with
  // what those runs used.
  for (const c of [good, train("--dataset", "folder", "--data-dir", "d"), train("--dataset", "synthetic")]) {
    const { transforms: _t, decoder: _d, ...older } = c;
    assertEquals(trainConfigFromJSON(older, "old"), c);
    const { recipe: _r, autoAugment: _a, raNumOps: _n, raMagnitude: _m, randomErase: _e, ...beforeAugment } = c;
    assertEquals(trainConfigFromJSON(beforeAugment, "old"), c);
  }
  // A folder config of transforms cifar (the CIFAR recipe) without a recipe field: cifar.
  const jpegs = train("--dataset", "folder", "--data-dir", "d", "--transforms", "cifar");
  const { recipe: _r, ...noRecipe } = jpegs;
  assertEquals(trainConfigFromJSON(noRecipe, "old").recipe, "cifar");
  throws(() => trainConfigFromJSON({ ...good, autoAugment: "svhn" }, "meta"), /meta: autoAugment must be one of none/);
  throws(() => trainConfigFromJSON({ ...good, randomErase: "0.1" }, "meta"), /field "randomErase" must be a number/);
});
