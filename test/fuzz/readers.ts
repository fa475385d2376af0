// Reader-level fuzzing, in process (a hundred times faster than a CLI child): each reader is given
// edited copies of its seeds, and anything it throws that is not an InputError or UnsupportedError
// is an internal error. FIFOs and unreadable files are left to the CLI campaign: in process, a
// blocked read would stop the whole run rather than time out, and root reads chmod 000 files.

import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { isUserError } from '../../src/errors.js';
import { loadCheckpoint } from '../../src/convnext/load.js';
import { loadOnnxModel } from '../../src/convnext/import-onnx.js';
import { openDataset } from '../../src/data/images.js';
import { readHfFolder } from '../../src/formats/huggingface.js';
import { readNpy } from '../../src/formats/npy.js';
import { decodeOnnx } from '../../src/formats/onnx.js';
import { readOnnxSummary } from '../../src/formats/onnx-summary.js';
import { readPytorchCheckpoint } from '../../src/formats/pytorch.js';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { readInputFile } from '../../src/formats/sniff.js';
import { readTfjsFolder } from '../../src/formats/tfjs-folder.js';
import { loadTfjsModel } from '../../src/runtime/tfjs.js';
import { applyChange, changeOf, type Change } from './cases.js';
import type { Seed, SeedKind } from './seeds.js';

export interface ReaderTarget {
  readonly name: string;
  readonly kinds: readonly SeedKind[];
  read(path: string, seed: Seed): Promise<unknown>;
}

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export const READERS: readonly ReaderTarget[] = [
  { name: 'readPytorchCheckpoint', kinds: ['pth'], read: (p) => readPytorchCheckpoint(p) },
  { name: 'readSafetensors', kinds: ['safetensors'], read: (p) => readSafetensors(p) },
  { name: 'loadCheckpoint', kinds: ['pth', 'safetensors', 'hf'], read: (p, s) => loadCheckpoint(p, { imageSize: s.imageSize }) },
  { name: 'readHfFolder', kinds: ['hf'], read: (p) => readHfFolder(p) },
  { name: 'readNpy', kinds: ['npy'], read: async (p) => readNpy(p) },
  { name: 'decodeOnnx', kinds: ['onnx'], read: async (p) => decodeOnnx(await readInputFile(p), { source: p }) },
  { name: 'loadOnnxModel', kinds: ['onnx'], read: async (p) => loadOnnxModel(p) },
  { name: 'readOnnxSummary', kinds: ['onnx'], read: async (p) => readOnnxSummary(p) },
  {
    name: 'openDataset',
    kinds: ['images', 'npy'],
    read: async (p) => {
      const data = openDataset(p, { preprocessing: { resize: 32, crop: 32, interpolation: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, classNames: FASHION_CLASSES });
      for await (const batch of data.batches(4)) void batch;
    },
  },
  { name: 'readTfjsFolder', kinds: ['tfjs'], read: (p) => readTfjsFolder(p) },
  {
    name: 'loadTfjsModel',
    kinds: ['tfjs'],
    read: async (p, s) => {
      const m = await loadTfjsModel(p, 'cpu');
      try {
        const size = s.imageSize ?? 64;
        await m.run({ data: new Float32Array(3 * size * size), shape: [1, 3, size, size] });
      } finally {
        m.dispose();
      }
    },
  },
];

export interface ReaderCase {
  readonly reader: string;
  readonly seed: string;
  readonly change?: Change;
}

/** Cases for one reader: its seeds, edited (or swapped for a missing file, a folder, /dev/zero …). */
export function readerCase(target: ReaderTarget, seeds: readonly Seed[]): fc.Arbitrary<ReaderCase> {
  const mine = seeds.filter((s) => target.kinds.includes(s.kind));
  return fc.constantFrom(...mine).chain((s) =>
    changeOf(s)
      .filter((c) => c?.fs !== 'fifo' && c?.fs !== 'unreadable')
      .map((change) => ({ reader: target.name, seed: s.name, change })),
  );
}

export type ReaderOutcome = 'read' | 'refusal' | 'internal';

/** Runs one case in a fresh folder; an internal error comes back with its stack. */
export async function runReaderCase(c: ReaderCase, seeds: ReadonlyMap<string, Seed>): Promise<{ outcome: ReaderOutcome; error?: string }> {
  const target = READERS.find((r) => r.name === c.reader)!;
  const seed = seeds.get(c.seed)!;
  const dir = mkdtempSync(join(process.env.FUZZ_TMP ?? '/tmp', 'fuzz-reader-'));
  try {
    const at = join(dir, basename(seed.path));
    cpSync(seed.path, at, { recursive: true });
    if (c.change) applyChange(at, c.change);
    await target.read(at, seed);
    return { outcome: 'read' };
  } catch (e) {
    if (isUserError(e)) return { outcome: 'refusal' };
    return { outcome: 'internal', error: (e as Error)?.stack ?? String(e) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
