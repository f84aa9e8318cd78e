/**
 * Counter-based random numbers: every draw is a pure function of integer keys such as (seed, epoch, sample index), so
 * a loader can reproduce any batch of any epoch without replaying the ones before it (resumable, worker-order free).
 * @module
 */

/** A generator of uniform floats in [0, 1), as returned by {@linkcode keyedRandom}. */
export type Random = () => number;

/** Mixes one 32-bit word into a running hash (murmur3's finaliser over an xor-multiply step). */
function mix(h: number, k: number): number {
  h = Math.imul(h ^ (k >>> 0), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Hashes integer keys to one 32-bit unsigned integer. Keys outside the 32-bit range are split into two words, so
 * seeds up to 2^53 stay distinct.
 */
export function hashKeys(...keys: number[]): number {
  let h = 0x9e3779b9;
  for (const k of keys) {
    if (!Number.isInteger(k)) throw new RangeError(`random keys must be integers, received ${k}`);
    h = mix(h, k);
    h = mix(h, Math.floor(k / 0x100000000));
  }
  return h;
}

/**
 * A reproducible stream of uniform floats in [0, 1) keyed by integers (mulberry32 seeded with {@linkcode hashKeys}).
 * The same keys always give the same stream.
 */
export function keyedRandom(...keys: number[]): Random {
  let state = hashKeys(...keys);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [low, high] (both inclusive), like Python's `random.randint`. */
export function randomInt(random: Random, low: number, high: number): number {
  return low + Math.floor(random() * (high - low + 1));
}

/** 0..n-1 in order: the sample order of an unshuffled split. */
export function identityOrder(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/** A random permutation of 0..n-1 (Fisher–Yates) drawn from `random`. */
export function permutation(n: number, random: Random): Uint32Array {
  const order = identityOrder(n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
