/**
 * What an unknown command-line flag most likely meant: the words after "Unknown option '--x'". In order: torchvision's
 * (references/classification/train.py) or timm's (train.py) name for a flag of ours; a note for their flags that mean
 * something we do not have; the flags the name begins, or is whole words of (`--batch` -> `--batch-size`, `--logits`
 * -> `--save-logits`); last, a flag a typo away.
 * @module
 */
import { distance } from "fastest-levenshtein";

/**
 * torchvision's and timm's names for flags of ours. The first target the task has is suggested (eval has no `--out`
 * or `--init`; torchvision evaluates `--weights` or `--resume` with `--test-only`).
 */
export const FOREIGN_FLAGS: Readonly<Record<string, string | readonly string[]>> = {
  // torchvision
  "data-path": "data-dir",
  model: "arch",
  "output-dir": "out",
  "lr-scheduler": "schedule",
  "lr-warmup-epochs": "warmup-epochs",
  "lr-step-size": "step-size",
  "lr-gamma": "gamma",
  "lr-min": "min-lr",
  wd: "weight-decay",
  "print-freq": "log-every",
  "train-crop-size": "image-size",
  weights: ["init", "checkpoint"],
  resume: "checkpoint",
  // timm
  output: "out",
  sched: "schedule",
  warmup: "warmup-epochs",
  "decay-epochs": "step-size",
  "decay-rate": "gamma",
  smoothing: "label-smoothing",
  mixup: "mixup-alpha",
  cutmix: "cutmix-alpha",
  reprob: "random-erase",
  aa: "auto-augment",
  "clip-grad": "clip-grad-norm",
  "img-size": "image-size",
  "initial-checkpoint": "init",
  "checkpoint-hist": "keep",
  "log-interval": "log-every",
};

/**
 * torchvision's and timm's training flags that have no counterpart here, with what to do instead; said by tasks that
 * have the flag `when` (the training command).
 */
export const FOREIGN_NOTES: Readonly<Record<string, { when: string; note: string }>> = {
  opt: { when: "momentum", note: "the optimizer is always SGD here, with --momentum and --nesterov" },
  "norm-weight-decay": {
    when: "weight-decay-all",
    note: "here BatchNorm parameters are not decayed, or decayed by --weight-decay with --weight-decay-all",
  },
  "test-only": { when: "epochs", note: "evaluate a checkpoint with deno task eval --checkpoint PATH" },
  "bias-weight-decay": {
    when: "weight-decay-all",
    note: "here biases are not decayed, or decayed by --weight-decay with --weight-decay-all",
  },
};

/** Flags listed at most when several begin with, or contain, the unknown name equally well. */
const MAX_LISTED = 3;

/** Advice on an unknown flag: flags it may have meant (with dashes), or a note; empty when none is close. */
export interface FlagSuggestion {
  flags: string[];
  note?: string;
}

/**
 * Flags of `known` (names without dashes) that the unknown `name` (without dashes) may have meant.
 *
 * Edit distance alone misleads on short names: one letter changed in a 3-5 letter name leaves as likely another
 * word as a typo (`--opt` is not `--out`, `--sched` is not `--seed`), and a prefix is farther from its flag than an
 * unrelated short flag (`--batch` is 2 edits from `--arch`, 5 from `--batch-size`). So: a name under 5 letters is a
 * typo only if one letter was left out, added, or swapped with its neighbour (`--ou`, `--outt`, `--prot`); a longer
 * one if at most a quarter of its letters differ (a swap counting two), `--chekpoint`, `--num-class`.
 */
export function suggestFlags(name: string, known: readonly string[]): FlagSuggestion {
  const alias = [FOREIGN_FLAGS[name] ?? []].flat().find((f) => known.includes(f));
  if (alias !== undefined) return { flags: [`--${alias}`] };
  const foreign = FOREIGN_NOTES[name];
  if (foreign !== undefined && known.includes(foreign.when)) return { flags: [], note: foreign.note };
  const byWords = known.map((k) => ({ k, rank: wordRank(name, k) })).filter((m) => m.rank !== undefined);
  const bestRank = Math.min(...byWords.map((m) => m.rank!));
  const listed = byWords.filter((m) => m.rank === bestRank).slice(0, MAX_LISTED);
  if (listed.length > 0) return { flags: listed.map((m) => `--${m.k}`) };
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = distance(name, k);
    if (!best || d < best.d) best = { name: k, d };
  }
  if (!best) return { flags: [] };
  const close = name.length < 5
    ? (best.d === 1 && best.name.length !== name.length) || isAdjacentSwap(name, best.name)
    : best.d <= Math.floor(name.length / 4);
  return { flags: close ? [`--${best.name}`] : [] };
}

/**
 * How `name` sits in flag `k`, best first: 0 its leading words (`batch` in `batch-size`), 1 a run of its words
 * (`logits` in `save-logits`), 2 the start of its first word (`epoch` in `epochs`), 3 the start of a later word
 * (`logit` in `save-logits`); undefined when none. Only the best rank found is suggested: `--data` is `--data-dir`,
 * not `--dataset`; `--epoch` is `--epochs`, not `--warmup-epochs`.
 */
function wordRank(name: string, k: string): number | undefined {
  if (name.length < 2) return undefined;
  if (k.startsWith(`${name}-`)) return 0;
  if (`-${k}-`.includes(`-${name}-`)) return 1;
  if (k.startsWith(name)) return 2;
  if (`-${k}`.includes(`-${name}`)) return 3;
  return undefined;
}

/** Whether `b` is `a` with two neighbouring letters swapped (`prot`, `port`). */
function isAdjacentSwap(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const diff = [...a].flatMap((c, i) => (c === b[i] ? [] : [i]));
  return diff.length === 2 && diff[1] === diff[0] + 1 && a[diff[0]] === b[diff[1]] && a[diff[1]] === b[diff[0]];
}

/** The suggestion as words after "Unknown option '--x'": "; did you mean --a or --b?", or "" when none. */
export function suggestionText(s: FlagSuggestion): string {
  if (s.note !== undefined) return ` (${s.note})`;
  if (s.flags.length === 0) return "";
  const list = s.flags.length === 1 ? s.flags[0] : `${s.flags.slice(0, -1).join(", ")} or ${s.flags.at(-1)}`;
  return `; did you mean ${list}?`;
}
