/**
 * The regular files of a `.tar` held in memory, found by walking its 512-byte headers (POSIX ustar, GNU long names
 * and pax `path` records), with no file system or stream: the browser page's reader of the archives a user picks
 * (data/tar_entries.ts, on `tar-stream` and Node streams, reads archives from disk).
 * @module
 */

/** One regular file of the archive: its path without a leading "./", and a view of its bytes (no copy). */
export interface TarMember {
  name: string;
  bytes: Uint8Array;
}

const BLOCK = 512;

/**
 * Every regular file of the tar `tar` (`source` names it in errors), in archive order.
 * @throws {Error} naming `source` and the byte offset on a header whose checksum is wrong (not a tar archive) or a
 * member that runs past the end (truncated).
 */
export function tarMembers(tar: Uint8Array, source: string): TarMember[] {
  const out: TarMember[] = [];
  let longName: string | null = null;
  let offset = 0;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return out; // the end-of-archive blocks
    const stored = octal(header, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]; // the checksum field counts as spaces
    if (stored !== sum) {
      throw new Error(
        `${source}: not a tar archive: the header at byte offset ${offset} has ` +
          `${Number.isNaN(stored) ? "no octal checksum" : `checksum ${stored}`}, its bytes sum to ${sum}`,
      );
    }
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156]);
    const start = offset + BLOCK;
    if (start + size > tar.length) {
      throw new Error(
        `${source}: truncated: the member at byte offset ${offset} declares ${size} bytes, ${
          tar.length - start
        } remain`,
      );
    }
    const data = tar.subarray(start, start + size);
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L") { // GNU: the next header's full name
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === "x") { // pax: records "LEN key=value\n"; only `path` matters here
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(data));
      if (path) longName = path[1];
      continue;
    }
    // POSIX ustar splits long names into prefix (345, 155 bytes) + name; old GNU headers use those bytes otherwise.
    const ustar = cString(header, 257, 6) === "ustar" && header[262] === 0;
    const prefix = ustar ? cString(header, 345, 155) : "";
    const name = longName ?? (prefix ? `${prefix}/` : "") + cString(header, 0, 100);
    longName = null;
    if (type === "0" || type === "\0" || type === "7") out.push({ name: name.replace(/^\.\//, ""), bytes: data });
  }
  return out; // an archive without end blocks: every complete member was read
}

/** The NUL-terminated ASCII string of `length` bytes at `at`. */
function cString(bytes: Uint8Array, at: number, length: number): string {
  let end = at;
  while (end < at + length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(at, end));
}

/** An octal number field (spaces and NULs around it ignored); NaN when it holds anything else. */
function octal(bytes: Uint8Array, at: number, length: number): number {
  const text = cString(bytes, at, length).trim();
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN;
}
