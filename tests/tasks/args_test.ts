import { assert, assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { parseArgs, UsageError } from "../../tasks/args.ts";
import { parseDashboardArgs } from "../../tasks/dashboard.ts";
import { parseDemoArgs } from "../../tasks/demo.ts";
import { parseEvalArgs } from "../../tasks/eval_flags.ts";
import { parseExportArgs } from "../../tasks/export.ts";
import { parseSummaryArgs } from "../../tasks/summary.ts";
import { parseTrainArgs } from "../../tasks/train_flags.ts";

/** Asserts that `parse` throws a UsageError whose flag is `flag` and whose message matches `re`. */
function usage(parse: () => unknown, flag: string | undefined, re: RegExp, task = "") {
  throws(parse, (e: unknown) => {
    assert(e instanceof UsageError, `${task} ${e}`);
    assertStrictEquals(e.flag, flag, `${task} flag of "${e.message}"`);
    assert(re.test(e.message), `${task} message "${e.message}" does not match ${re}`);
    return true;
  });
}

const options = {
  epochs: { type: "string" },
  "batch-size": { type: "string" },
  out: { type: "string", short: "o" },
  nesterov: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function parse(...args: string[]) {
  return parseArgs({ args, options, strict: true, allowPositionals: true, allowNegative: true });
}

Deno.test("an unknown flag close to a known one gets 'did you mean', a far one does not", () => {
  usage(() => parse("--epoch", "3"), "--epoch", /^Unknown option '--epoch'; did you mean --epochs\?$/);
  usage(() => parse("--batchsize=3"), "--batchsize", /did you mean --batch-size\?$/);
  usage(() => parse("--batch_size", "3"), "--batch_size", /did you mean --batch-size\?$/);
  usage(() => parse("--nestrov"), "--nestrov", /did you mean --nesterov\?$/);
  usage(() => parse("--no-nestrov"), "--no-nestrov", /did you mean --no-nesterov\?$/); // allowNegative's forms
  usage(() => parse("--learning-rate", "1"), "--learning-rate", /^Unknown option '--learning-rate'$/);
  usage(() => parse("--ou"), "--ou", /did you mean --out\?$/);
  usage(() => parse("--xy"), "--xy", /^Unknown option '--xy'$/); // both letters differ: not close
  usage(() => parse("-x"), "-x", /^Unknown option '-x'$/);
});

Deno.test("every task that parses flags suggests the flag meant", () => {
  const cases: [string, () => unknown, string, string][] = [
    ["train", () => parseTrainArgs(["--weight_decay", "0"]), "--weight_decay", "--weight-decay"],
    ["eval", () => parseEvalArgs(["--chekpoint", "x"]), "--chekpoint", "--checkpoint"],
    ["export", () => parseExportArgs(["--checkpoint", "a", "--outt", "b"]), "--outt", "--out"],
    ["summary", () => parseSummaryArgs(["--num-class", "10"]), "--num-class", "--num-classes"],
    ["dashboard", () => parseDashboardArgs(["--prot", "80"]), "--prot", "--port"],
    ["demo", () => parseDemoArgs(["--file", "x"]), "--file", "--files"],
  ];
  for (const [task, run, flag, meant] of cases) {
    usage(run, flag, new RegExp(`Unknown option '${flag}'; did you mean ${meant}\\?$`), task);
  }
});

Deno.test("torchvision's and timm's names, prefixes and whole words beat edit distance", () => {
  const train = (...a: string[]) => () => parseTrainArgs(a);
  const eval_ = (...a: string[]) => () => parseEvalArgs(["--checkpoint", "x", ...a]);
  const cases: [() => unknown, string, string][] = [
    [train("--batch", "4"), "--batch", "--batch-size"], // 2 edits from --arch
    [train("--sched", "cosine"), "--sched", "--schedule"], // 2 edits from --seed
    [train("--warmup", "5"), "--warmup", "--warmup-epochs"],
    [train("--data", "x"), "--data", "--data-dir"], // a leading word beats the start of --dataset
    [train("--epoch", "3"), "--epoch", "--epochs"], // the start of a flag beats a later word's (--warmup-epochs)
    [train("--output", "x"), "--output", "--out"],
    [train("--output-dir", "x"), "--output-dir", "--out"],
    [train("--model", "resnet50"), "--model", "--arch"], // not --model-ema
    [train("--data-path", "x"), "--data-path", "--data-dir"],
    [train("--lr-scheduler", "step"), "--lr-scheduler", "--schedule"],
    [train("--lr-warmup-epochs", "5"), "--lr-warmup-epochs", "--warmup-epochs"],
    [train("--smoothing", "0.1"), "--smoothing", "--label-smoothing"],
    [train("--decay", "0"), "--decay", "--weight-decay, --weight-decay-all or --model-ema-decay"], // at most 3
    [eval_("--logits", "x.npy"), "--logits", "--save-logits"],
    [eval_("--logit", "x.npy"), "--logit", "--save-logits"],
    [train("--weights", "x"), "--weights", "--init"],
    [eval_("--weights", "x"), "--weights", "--checkpoint"], // torchvision's --test-only --weights
    [eval_("--model", "resnet18"), "--model", "--arch"],
    [eval_("--data-path", "x"), "--data-path", "--data-dir"],
  ];
  for (const [run, flag, meant] of cases) {
    usage(run, flag, new RegExp(`^deno task \\w+: Unknown option '${flag}'; did you mean ${meant}\\?$`), flag);
  }
  // eval has no --out: torchvision's --output-dir is not turned into a flag it lacks.
  usage(eval_("--output-dir", "x"), "--output-dir", /Unknown option '--output-dir'$/);
});

Deno.test("flags of torchvision and timm that mean something we lack get no misleading suggestion", () => {
  // Each was "did you mean" a flag of another meaning: --out, --weight-decay.
  usage(
    () => parseTrainArgs(["--opt", "adamw"]),
    "--opt",
    /Unknown option '--opt' \(the optimizer is always SGD here, with --momentum/,
  );
  usage(
    () => parseTrainArgs(["--norm-weight-decay", "0"]),
    "--norm-weight-decay",
    /Unknown option '--norm-weight-decay' \(here BatchNorm parameters are not decayed, .*--weight-decay-all\)$/,
  );
  usage(
    () => parseTrainArgs(["--test-only"]),
    "--test-only",
    /'--test-only' \(evaluate a checkpoint with deno task eval/,
  );
  // The stricter distance for short names: a changed letter is not a typo, a dropped, added or swapped one is.
  usage(() => parse("--opt"), "--opt", /^Unknown option '--opt'$/); // one letter from --out, in a task without notes
  usage(() => parse("--epocs"), "--epocs", /did you mean --epochs\?$/); // 6 letters, 1 edit
  usage(() => parse("--ecohs"), "--ecohs", /^Unknown option '--ecohs'$/); // 6 letters, 2 edits
  usage(() => parse("--outt"), "--outt", /did you mean --out\?$/);
  usage(() => parseDashboardArgs(["--prot", "80"]), "--prot", /did you mean --port\?$/);
  usage(() => parseDashboardArgs(["--post", "80"]), "--post", /Unknown option '--post'$/);
});

Deno.test("a negative number after a flag is its value, in both forms", () => {
  assertEquals(parse("--epochs", "-1").values.epochs, "-1");
  assertEquals(parse("--epochs=-1").values.epochs, "-1");
  assertEquals(parse("--epochs", "-.5", "--out", "-2e3").values, { epochs: "-.5", out: "-2e3" });
  assertEquals(parse("-o", "-1").values.out, "-1"); // a short flag that takes a value
  // After "--" every word is a positional, even one that follows a flag's name.
  assertEquals(parse("--", "--epochs", "-1").positionals, ["--epochs", "-1"]);
  // A flag without a value takes no number: "-1" is then an unknown short flag, as before.
  usage(() => parse("--nesterov", "-1"), "-1", /Unknown option '-1'/);
});

Deno.test("a value starting with a dash that is not a number says how to write it", () => {
  usage(
    () => parse("--out", "--epochs", "3"),
    "--out",
    /^--out expects a value; received "--epochs" \(write --out=--epochs/,
  );
  usage(() => parse("--epochs", "3", "--out", "-x"), "--out", /received "-x" \(write --out=-x/);
  usage(() => parse("-o", "-x"), "-o", /^-o expects a value; received "-x" \(write --out=-x/);
  assertEquals(parse("--out=-x").values.out, "-x");
});
