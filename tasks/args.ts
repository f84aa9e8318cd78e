/**
 * Command-line parsing for the `tasks/` entry points. JSR (`@std/cli`) is unreachable from our build machines, so this
 * is Node's `parseArgs`; switching to `@std/cli` later is a change to this file only. Also the conventions every task
 * shares: a {@linkcode UsageError} exits with status 2, any other error with status 1.
 * @module
 */
import { parseArgs as nodeParseArgs, type ParseArgsConfig } from "node:util";
import { suggestFlags, suggestionText } from "./flag_suggestions.ts";
import { UsageError } from "./usage_error.ts";
import { ConfigError, FieldMessageError } from "../io/config_error.ts";

export { UsageError };

/**
 * `parseArgs` from `node:util`, strict, with its errors (unknown option, missing value) turned into
 * {@linkcode UsageError}s that name the flag; an unknown flag gets "did you mean --x?" when one is close (see
 * `suggestFlags` in `flag_suggestions.ts`). A negative number after a flag that takes a value is that value
 * (`--epochs -1` is `--epochs=-1`, so it reaches the flag's own check), where node would call it ambiguous.
 */
export function parseArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof nodeParseArgs<T>> {
  const args = joinNegativeValues(config.args ?? Deno.args, config.options ?? {});
  try {
    return nodeParseArgs<T>({ ...config, args });
  } catch (e) {
    if (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS")) {
      throw usageErrorOf(e.message, args, config);
    }
    throw e;
  }
}

/** Node's options: name -> type and short letter. */
type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * `args` with each value-taking flag that is followed by a negative number written as one token: `["--lr", "-1"]`
 * becomes `["--lr=-1"]`. No flag of ours is a digit, so `-1` can only be a value. Stops at `--`.
 */
function joinNegativeValues(args: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return [...out, ...args.slice(i)];
    const name = /^--([^=]+)$/.exec(arg)?.[1] ??
      Object.entries(options).find(([, o]) => o.short !== undefined && arg === `-${o.short}`)?.[0];
    if (name !== undefined && options[name]?.type === "string" && /^-\.?\d/.test(args[i + 1] ?? "")) {
      out.push(`--${name}=${args[++i]}`);
    } else out.push(arg);
  }
  return out;
}

/** Node's parse error `message` as a UsageError in our words, naming the flag (node quotes it: "'--x'"). */
function usageErrorOf(message: string, args: readonly string[], config: ParseArgsConfig): UsageError {
  const flag = /'(-[^' ]+)/.exec(message)?.[1];
  if (flag && message.includes("argument is ambiguous")) {
    // A value that starts with "-" but is no number, most often the next flag: "--out --lr".
    const received = args.find((a, i) => i > 0 && args[i - 1] === flag && a.startsWith("-"));
    if (received === undefined) return new UsageError(message.split(". To specify")[0], flag); // e.g. grouped "-ho"
    const long = flag.startsWith("--")
      ? flag
      : `--${Object.entries(config.options ?? {}).find(([, o]) => `-${o.short}` === flag)?.[0]}`;
    return new UsageError(
      `${flag} expects a value; received "${received}" (write ${long}=${received} for a value starting with "-")`,
      flag,
    );
  }
  const text = message.split(". To specify")[0];
  if (!flag?.startsWith("--") || !message.startsWith("Unknown option")) return new UsageError(text, flag);
  return new UsageError(`${text}${suggestionText(suggestFlags(flag.slice(2), knownFlags(config)))}`, flag);
}

/** The long flags of `config` without dashes, with allowNegative's `no-` forms of its booleans. */
function knownFlags(config: ParseArgsConfig): string[] {
  const options = Object.entries(config.options ?? {});
  return [
    ...options.map(([n]) => n),
    ...(config.allowNegative ? options.filter(([, o]) => o.type === "boolean").map(([n]) => `no-${n}`) : []),
  ];
}

/** The command-line flag that sets configuration field `field`: `batchSize` is `--batch-size`. */
export function flagOf(field: string): string {
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** A library's {@linkcode ConfigError} as the command line says it: fields named as their flags. */
export function usageErrorFrom(e: ConfigError): UsageError {
  return new UsageError(e.describe(flagOf), flagOf(e.field));
}

/** Parses `value` of `--flag` as an integer >= `min`, or throws a UsageError naming the flag and the value. */
export function intFlag(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${flag} expects an integer >= ${min}, got "${value}"`);
  }
  return n;
}

/** Parses `value` of `--flag` as one of `choices`, or throws a UsageError listing them. */
export function choiceFlag<C extends string>(flag: string, value: string, choices: readonly C[]): C {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as C;
}

/** An error's message as the command line says it: a library's fields (`{lr}`) named as their flags (`--lr`). */
export function errorText(error: unknown): string {
  if (error instanceof FieldMessageError) return error.describe(flagOf);
  return error instanceof Error ? error.message : String(error);
}

/** How {@linkcode runTask} reports a failure, for tasks that are one process of several (e.g. an MPI rank). */
export interface TaskOptions {
  /** Words after "error: " (e.g. "rank 1 of 8: "), read when the error happens. */
  errorPrefix?: () => string;
  /** Ends the process with `code` (default `Deno.exit`). */
  exit?: (code: number) => never;
}

/**
 * Runs a task's main function: a {@linkcode UsageError} (or a library's {@linkcode ConfigError}, which a flag set)
 * prints its message and exits 2, any other error prints its message and exits 1. Only for entry points.
 */
export async function runTask(main: () => Promise<void> | void, options: TaskOptions = {}): Promise<void> {
  try {
    await main();
  } catch (e) {
    const error = e instanceof ConfigError ? usageErrorFrom(e) : e;
    const usage = error instanceof UsageError;
    // A library error that names fields (advice such as "lower {lr}") is said with flags here too.
    const message = `${errorText(error)}${usage ? " (see --help)" : ""}`;
    console.error(`error: ${options.errorPrefix?.() ?? ""}${message}`);
    (options.exit ?? Deno.exit)(usage ? 2 : 1);
  }
}
