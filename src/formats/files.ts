// Writing outputs safely: a half-written file is never left under the output's name, and an input
// is never overwritten.

import { closeSync, existsSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../errors.js';

/** Checks that `output` can be written: its folder exists, and it is none of `inputs`. */
export function checkOutputPath(output: string, inputs: readonly string[]): void {
  const dir = dirname(resolve(output));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`output folder ${dir} does not exist`, output);
  if (existsSync(output) && statSync(output).isDirectory()) throw new InputError('output path is a folder; give a file name', output);
  const target = existsSync(output) ? realpathSync(output) : resolve(output);
  for (const input of inputs) {
    if (existsSync(input) && realpathSync(input) === target) throw new InputError('output would overwrite the input; choose another name', output);
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
      const fd = openSync(tmp, 'w');
      try {
        for (const c of f.chunks) {
          let off = 0;
          while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off);
        }
      } finally {
        closeSync(fd);
      }
    }
    for (let i = files.length - 1; i >= 0; i--) renameSync(temps[i], files[i].path);
  } catch (e) {
    for (const t of temps) if (existsSync(t)) unlinkSync(t);
    throw e;
  }
}
