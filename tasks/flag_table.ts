/**
 * Command lines as tables: each flag names the configuration field it sets, and the field's rule (train/config.ts)
 * gives its type, choices and bounds, so the command line, `--help` and the JSON validation share one definition.
 * @module
 */
import { flagOf, parseArgs, UsageError, usageErrorFrom } from "./args.ts";
import { checkFieldValue, ConfigError, type FieldRule } from "../train/config.ts";

/** One flag: it sets field `key` and is named after it (`batchSize` is `--batch-size`), or it is `--help`. */
export interface FlagSpec<K extends string> {
  key: K | "help";
  help: string;
  /** The default `--help` shows when it is not taken from the recipes. */
  shownDefault?: string;
}

/** The flag's name without dashes. */
function flagName<K extends string>(spec: FlagSpec<K>): string {
  return flagOf(spec.key).slice(2);
}

/** The typed values of the flags given, by field; "help" when `--help`/`-h` was given. */
export function parseFlagTable<K extends string>(
  argv: string[],
  specs: readonly FlagSpec<K>[],
  rules: Readonly<Record<K, FieldRule>>,
  task: string,
): Partial<Record<K, unknown>> | "help" {
  let raw: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(
      specs.map((
        s,
      ) => [flagName(s), { type: s.key !== "help" && rules[s.key].kind === "boolean" ? "boolean" : "string" }]),
    );
    raw = parseArgs(
      {
        args: argv,
        options: { ...options, help: { type: "boolean", short: "h" } },
        strict: true,
        allowPositionals: false,
        allowNegative: true,
      } as Parameters<typeof parseArgs>[0],
    ).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError(`deno task ${task}: ${e.message}`, e.flag); // runTask adds "(see --help)"
  }
  if (raw.help) return "help";
  const given: Partial<Record<K, unknown>> = {};
  for (const spec of specs) {
    const v = raw[flagName(spec)];
    if (v !== undefined && spec.key !== "help") given[spec.key] = flagValue(spec.key, rules[spec.key], v);
  }
  return given;
}

/** Converts one flag's text to its field's typed value, or throws a UsageError naming the flag, value and rule. */
function flagValue(field: string, rule: FieldRule, raw: string | boolean): unknown {
  const name = flagOf(field);
  if (rule.kind === "boolean") {
    if (typeof raw !== "boolean") throw new UsageError(`${name} takes no value, got "${raw}"`, name);
    return raw;
  }
  const text = String(raw);
  let value: unknown = text;
  if (rule.kind === "string" && text === "") throw new UsageError(`${name} needs a non-empty value`, name);
  if (rule.kind === "list") {
    const parts = text.split(",").map((s) => s.trim());
    if (parts.some((p) => p === "" || !Number.isFinite(Number(p)))) {
      throw new UsageError(`${name} must be comma-separated positive integers (epochs), got "${text}"`, name);
    }
    value = parts.map(Number);
  }
  if (rule.kind === "int" || rule.kind === "number") {
    value = text.trim() === "" ? NaN : Number(text);
    if (!Number.isFinite(value)) throw new UsageError(`${name} expects a number, got "${text}"`, name);
  }
  try {
    checkFieldValue(field, rule, value);
  } catch (e) {
    throw e instanceof ConfigError ? usageErrorFrom(e) : e;
  }
  return value;
}

/** `--help` lines: each flag, its value's shape, its text, its choices and its default. */
export function helpLines<K extends string>(
  specs: readonly FlagSpec<K>[],
  rules: Readonly<Record<K, FieldRule>>,
  defaultOf: (s: FlagSpec<K>) => string,
): string[] {
  const meta = (s: FlagSpec<K>) => {
    const rule = s.key === "help" ? undefined : rules[s.key];
    if (!rule || rule.kind === "boolean") return "";
    if (rule.choices) return " NAME";
    if (rule.kind === "int") return " N";
    if (rule.kind === "number") return " X";
    if (rule.kind === "list") return " E1,E2,...";
    return " PATH";
  };
  const width = Math.max(...specs.map((s) => flagName(s).length + meta(s).length)) + 6;
  const lines: string[] = [];
  for (const s of specs) {
    const left = `  --${flagName(s)}${meta(s)}`.padEnd(width);
    const choices = s.key !== "help" && rules[s.key].choices ? `; one of ${rules[s.key].choices!.join(", ")}` : "";
    const text = `${s.help}${choices}`;
    const dflt = s.key === "help" ? "" : ` (default: ${defaultOf(s)})`;
    const indent = " ".repeat(width + 2);
    if (left.length + text.length + dflt.length <= 118) lines.push(left + text + dflt);
    else if (left.length + text.length <= 120) lines.push(left + text, indent + dflt.trim());
    else lines.push(left + s.help, indent + `${choices.slice(2)}${dflt}`); // long choice lists get their own line
  }
  return lines;
}
