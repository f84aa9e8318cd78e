/**
 * Command-line parsing for the `tasks/` entry points. JSR (`@std/cli`) is unreachable from our build machines, so this
 * is Node's `parseArgs`; switching to `@std/cli` later is a change to this file only.
 * @module
 */
export { parseArgs } from "node:util";
