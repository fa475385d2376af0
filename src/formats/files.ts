// Writing outputs safely: a half-written file is never left under the output's name, and nothing a
// command reads is ever overwritten.

import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { readOnnxSummary } from './onnx-summary.js';
import { sniffFileSync, type FileFormat } from './sniff.js';

/** A path a command reads or writes, with what it is to the user (for the message that names both). */
export interface RolePath {
  readonly path: string;
  readonly what: string;
  /** A folder too big to list: any existing file below it counts as read. */
  readonly wholeFolder?: boolean;
}

/** An output: a file, or a folder the command fills (TF.js). */
export interface OutputPath extends RolePath {
  readonly folder?: boolean;
}

// A folder input stands for the files in it; past this many entries the check falls back to
// refusing any existing output inside the folder.
const MAX_LISTED = 100_000;

/**
 * The files an input path stands for: a file itself (an ONNX model with the side files it names), a
 * folder (a Hugging Face model, a data set) every file below it. Paths that do not exist are skipped:
 * the reader reports them.
 */
export function filesRead(path: string, what: string): RolePath[] {
  const stat = quietStat(path);
  if (!stat) return [];
  if (!stat.isDirectory()) {
    const side = stat.isFile() && sniffQuietly(path) === 'onnx' ? onnxSideFiles(path) : [];
    return [{ path, what }, ...side.map((p) => ({ path: p, what: `external data of ${what}` }))];
  }
  const out: RolePath[] = [{ path, what }];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // unreadable: the reader says so, with the path
    }
    for (const e of entries) {
      if (out.length > MAX_LISTED) {
        out[0] = { path, what, wholeFolder: true };
        return;
      }
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push({ path: p, what: `a file of ${what}` });
    }
  };
  walk(path);
  return out;
}

function onnxSideFiles(model: string): string[] {
  try {
    return readOnnxSummary(model).externalData.map((location) => join(dirname(model), location));
  } catch {
    return []; // a broken model is the reader's to report
  }
}

/**
 * stat that says "nothing there" for any path it cannot follow (a missing file, a symbolic-link
 * loop, no permission): this check only guards outputs, and the reader reports such inputs itself.
 */
function quietStat(path: string) {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

function quietReal(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

function sniffQuietly(path: string): FileFormat | undefined {
  try {
    return sniffFileSync(path);
  } catch {
    return undefined;
  }
}

/** The file's identity: the same for every name that reaches it, through symbolic and hard links. */
function identity(path: string): string | undefined {
  const st = quietStat(path);
  return st ? `${st.dev}:${st.ino}` : undefined;
}

const inside = (folder: string, path: string) => {
  const rel = relative(folder, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
};

const realOrResolved = (path: string) => quietReal(path) ?? resolve(path);

/**
 * Refuses, before any work, outputs that would destroy what the command reads: an output that is an
 * input (by file identity, so through symbolic and hard links), two outputs on one file, and a folder
 * output that holds an input. Also that each file output's folder exists and the name is no folder.
 */
export function checkOutputs(outputs: readonly OutputPath[], inputs: readonly RolePath[]): void {
  try {
    checkOutputsUnmapped(outputs, inputs);
  } catch (e) {
    throw writeError(e, outputs.find((o) => (e as { path?: string }).path === o.path)?.path ?? outputs[0]?.path ?? '');
  }
}

function checkOutputsUnmapped(outputs: readonly OutputPath[], inputs: readonly RolePath[]): void {
  const empty = outputs.find((o) => o.path === '');
  if (empty) throw new InputError(`${empty.what}: the output path is empty`);
  const byIdentity = new Map<string, RolePath>();
  for (const i of inputs) {
    const id = identity(i.path);
    if (id && !byIdentity.has(id)) byIdentity.set(id, i);
  }
  const wholeFolders = inputs.filter((i) => i.wholeFolder).map((i) => ({ ...i, real: quietReal(i.path) ?? resolve(i.path) }));
  const taken = new Map<string, OutputPath>();
  for (const o of outputs) {
    const dir = dirname(resolve(o.path));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`output folder ${dir} does not exist`, o.path);
    const st = quietStat(o.path);
    if (!o.folder && st?.isDirectory()) throw new InputError('output path is a folder; give a file name', o.path);
    const id = identity(o.path);
    const hit = id && byIdentity.get(id);
    if (hit) throw new InputError(`${o.what} would overwrite the input ${hit.path} (${hit.what}); choose another name`, o.path);
    if (o.folder && st?.isDirectory()) {
      const folder = quietReal(o.path) ?? resolve(o.path);
      const held = inputs.find((i) => {
        const real = quietReal(i.path);
        return real !== undefined && inside(folder, real);
      });
      if (held) throw new InputError(`${o.what} is a folder that holds the input ${held.path} (${held.what}); choose another folder`, o.path);
    }
    const big = st && wholeFolders.find((f) => inside(f.real, quietReal(o.path) ?? resolve(o.path)));
    if (big) throw new InputError(`${o.what} would replace a file inside the input ${big.path} (${big.what}); choose another name`, o.path);
    const key = realOrResolved(o.path);
    const other = taken.get(key);
    if (other) throw new InputError(`${o.what} and ${other.what} are the same file; choose two names`, o.path);
    taken.set(key, o);
  }
}

export interface PendingFile {
  readonly path: string;
  readonly chunks: readonly Uint8Array[];
}

/**
 * Writes each file to a temporary name beside it, then renames them all into place (the first file
 * last, so a model never appears before its side files). On any error the temporaries are removed.
 */
export function writeFilesAtomic(files: readonly PendingFile[]): void {
  const temps: string[] = [];
  try {
    for (const f of files) {
      const tmp = join(dirname(resolve(f.path)), `.${basename(f.path)}.${process.pid}.tmp`);
      temps.push(tmp);
      writeChunks(tmp, f.chunks);
    }
    for (let i = files.length - 1; i >= 0; i--) renameSync(temps[i], files[i].path);
  } catch (e) {
    for (const t of temps) if (existsSync(t)) unlinkSync(t);
    throw writeError(e, files.find((f) => (e as { dest?: string }).dest === f.path)?.path ?? files[0]?.path ?? '');
  }
}

function writeChunks(path: string, chunks: readonly Uint8Array[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const c of chunks) {
      let off = 0;
      // one write call takes at most 2 GiB - 1 bytes
      while (off < c.byteLength) off += writeSync(fd, c, off, Math.min(c.byteLength - off, 1 << 30));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `files` (paths relative to `dir`, subfolders made as needed) as one folder. A folder that
 * does not exist yet is filled under a temporary name beside it and renamed into place, so it
 * appears whole or not at all; into an existing one each file goes through writeFilesAtomic (the
 * first file last: put the one a loader reads first there).
 */
export function writeFolderAtomic(dir: string, files: readonly PendingFile[]): void {
  const target = resolve(dir);
  if (existsSync(target)) {
    try {
      for (const f of files) mkdirSync(dirname(join(target, f.path)), { recursive: true });
    } catch (err) {
      throw writeError(err, dir);
    }
    writeFilesAtomic(files.map((f) => ({ path: join(target, f.path), chunks: f.chunks })));
    return;
  }
  let tmp: string;
  try {
    tmp = mkdtempSync(join(dirname(target), `.${basename(target)}.tmp-`));
  } catch (err) {
    throw writeError(err, dir);
  }
  try {
    chmodSync(tmp, 0o777 & ~process.umask()); // mkdtemp makes it private; a model folder is not
    for (const f of files) {
      mkdirSync(dirname(join(tmp, f.path)), { recursive: true });
      writeChunks(join(tmp, f.path), f.chunks);
    }
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeError(err, dir);
  }
}

// What the file system said, as one line a user can act on; anything else stays an internal error.
const WRITE_ERRORS: Record<string, string> = {
  ENOENT: 'no such folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'the file is larger than this file system (or ulimit -f) allows',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many levels of symbolic links',
};

export function writeError(e: unknown, path: string): unknown {
  if (e instanceof InputError) return e;
  const why = WRITE_ERRORS[(e as NodeJS.ErrnoException)?.code ?? ''];
  return why ? new InputError(`cannot write: ${why}`, path) : e;
}
