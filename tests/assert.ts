/**
 * The assertion functions every test uses. JSR (`@std/assert`) is unreachable from our build machines, so this is
 * Node's strict assert; switching to `@std/assert` later is a change to this file only.
 * @module
 */
export {
  deepEqual as assertEquals,
  equal as assertStrictEquals,
  ok as assert,
  rejects,
  throws,
} from "node:assert/strict";
