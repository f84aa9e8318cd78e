/**
 * Lists the regular files of an uncompressed `.tar` with the byte offset and size of each file's data, reading only
 * the 512-byte headers (and the GNU long-name and PAX records before them) with positioned reads: indexing a 140 GB
 * archive costs its headers, not its bytes, and images are then read in place. Headers are decoded by tar-stream's
 * own `headers.js` (ustar, GNU, base-256 sizes, PAX), the same code that reads `.tar.gz` streams in `tar_entries.ts`.
 * @module
 */
import headers from "tar-stream/headers.js";

/** A regular file inside an archive. */
export interface TarMember {
  /** Path inside the archive, without a leading "./". */
  name: string;
  /** Byte offset of the file's data in the archive. */
  offset: number;
  /** Bytes of data. */
  size: number;
}

/** Reads exactly `into.length` bytes of `file` at `offset`, or throws naming `path` and what is missing. */
export async function readAt(file: Deno.FsFile, into: Uint8Array, offset: number, path: string): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < into.length) {
    const n = await file.read(into.subarray(done));
    if (n === null) {
      throw new Error(`${path}: ends at byte ${offset + done}, but ${into.length} bytes were expected from ${offset}`);
    }
    done += n;
  }
}

/**
 * {@linkcode readAt}, synchronously: header indexing makes one small read per member, and the async seek + read cost
 * ~90 µs of event-loop round trips per header where the synchronous ones cost ~15 µs (130,000 headers from the page
 * cache: 11.7 s async, 2.2 s sync on the 2-core build machine).
 */
function readAtSync(file: Deno.FsFile, into: Uint8Array, offset: number, path: string): void {
  file.seekSync(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < into.length) {
    const n = file.readSync(into.subarray(done));
    if (n === null) {
      throw new Error(`${path}: ends at byte ${offset + done}, but ${into.length} bytes were expected from ${offset}`);
    }
    done += n;
  }
}

/** Bytes `offset .. offset+size` of the file at `path` (a member's data, given its {@linkcode TarMember}). */
export async function readRange(path: string, offset: number, size: number): Promise<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  try {
    const bytes = new Uint8Array(size);
    await readAt(file, bytes, offset, path);
    return bytes;
  } finally {
    file.close();
  }
}

const LONG_HEADERS = new Set(["gnu-long-path", "gnu-long-link-path", "pax-header", "pax-global-header"]);

/** A tar archive stored inside another file, e.g. a member of an outer tar (ImageNet's per-class tars). */
export interface TarRange {
  /** Byte offset of the inner archive's first header in the file. */
  start: number;
  /** Bytes of the inner archive. */
  size: number;
  /** Names the inner archive in errors, e.g. "train.tar member n01440764.tar". */
  name: string;
}

/**
 * The regular files of the uncompressed tar archive at `path`, in archive order; with `range`, of the archive stored
 * in bytes `range.start .. range.start+range.size` of that file (offsets stay absolute: offsets in `path`).
 * @throws {Error} naming the archive (and `range.name`) and the byte offset of an invalid header, or the member whose
 * data runs past the end of the file (or of the range).
 */
export async function indexTar(path: string, range?: TarRange): Promise<TarMember[]> {
  const file = await Deno.open(path, { read: true });
  try {
    const fileSize = (await file.stat()).size;
    const total = range ? Math.min(fileSize, range.start + range.size) : fileSize;
    if (range && range.start + range.size > fileSize) {
      throw new Error(
        `${path}: ${range.name} is cut short: its ${range.size} bytes from byte ${range.start} run past the end ` +
          `(${fileSize} bytes)`,
      );
    }
    const where = range ? `${path}: ${range.name}` : path;
    const members: TarMember[] = [];
    const block = new Uint8Array(512);
    let offset = range?.start ?? 0;
    let longName: string | null = null;
    let pax: Record<string, string> | null = null;
    let paxGlobal: Record<string, string> | null = null;
    while (offset + 512 <= total) {
      readAtSync(file, block, offset, path);
      let header;
      try {
        header = headers.decode(block, "utf-8", false);
      } catch (e) {
        throw new Error(`${where}: invalid tar header at byte ${offset} (${(e as Error).message})`);
      }
      if (header === null) break; // the zero blocks that end an archive
      const dataOffset = offset + 512;
      let size: number = header.size ?? 0;
      if (LONG_HEADERS.has(header.type)) {
        const data = new Uint8Array(size);
        readAtSync(file, data, dataOffset, path);
        if (header.type === "gnu-long-path") longName = headers.decodeLongPath(data, "utf-8");
        else if (header.type === "pax-header") pax = { ...paxGlobal, ...headers.decodePax(data) };
        else if (header.type === "pax-global-header") paxGlobal = headers.decodePax(data);
      } else {
        // The long name and PAX records apply to the header that follows them (as tar-stream's extractor does).
        let name: string = longName ?? header.name;
        if (pax?.path) name = pax.path;
        if (pax?.size) size = parseInt(pax.size, 10);
        longName = null;
        pax = null;
        if (header.type === "file") {
          if (dataOffset + size > total) {
            throw new Error(
              `${where}: ${name} is cut short: its ${size} bytes from byte ${dataOffset} run past the end ` +
                `(${range ? `byte ${total}` : `${total} bytes`})`,
            );
          }
          members.push({ name: name.replace(/^\.\//, ""), offset: dataOffset, size });
        }
      }
      offset = dataOffset + Math.ceil(size / 512) * 512;
    }
    return members;
  } finally {
    file.close();
  }
}
