/**
 * The one error type for a bad configuration value or a contradiction between fields, raised by the library, which
 * knows fields, not command lines. Its message is a template in which `{field}` marks each field named, so that the
 * command-line layer can say `--batch-size` where the library says `batchSize` (see `tasks/args.ts`). Values from
 * outside (paths, user strings) go into a template through {@linkcode literal}, so that a path holding `{out}` stays
 * a path. It lives in `io/`, the lowest library layer but the kernels, so that every layer above (data, dist, io
 * itself) can name fields rather than flags.
 * @module
 */

/**
 * An error whose message names configuration fields (e.g. advice: "lower {lr}"): its message names the fields,
 * `describe()` names them your way, as a command line says its flags.
 */
export class FieldMessageError extends Error {
  /** The message with each field written `{field}`. */
  readonly template: string;
  constructor(template: string, options?: ErrorOptions) {
    super(renderTemplate(template, (f) => f), options);
    this.template = template;
  }

  /** The message with each `{field}` written as `nameOf(field)`, e.g. a command-line flag. */
  describe(nameOf: (field: string) => string): string {
    return renderTemplate(this.template, nameOf);
  }
}

/** A bad configuration: `field` is the field at fault; the message names fields, `describe()` names them your way. */
export class ConfigError extends FieldMessageError {
  /** The configuration field at fault, e.g. "batchSize". */
  readonly field: string;
  constructor(field: string, template: string) {
    super(template);
    this.name = "ConfigError";
    this.field = field;
  }
}

/** `text` escaped for a {@linkcode ConfigError} template: its `{` are doubled, so it is shown as it is. */
export function literal(text: string): string {
  return text.replaceAll("{", "{{");
}

/**
 * `error`'s message as a template, for a message built from it: a {@linkcode FieldMessageError}'s own template (its
 * fields stay fields), any other error's text escaped with {@linkcode literal}.
 */
export function templateOf(error: unknown): string {
  if (error instanceof FieldMessageError) return error.template;
  return literal(error instanceof Error ? error.message : String(error));
}

function renderTemplate(template: string, nameOf: (field: string) => string): string {
  // `{{` is a literal "{" (see literal()); `{field}` names a field.
  return template.replace(/\{\{|\{([A-Za-z][A-Za-z0-9]*)\}/g, (_, field?: string) => field ? nameOf(field) : "{");
}
