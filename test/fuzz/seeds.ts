// What the fuzzer starts from: the committed fixtures (fixtures/manifest.json's checkpoints and
// ONNX models, the edge and bad cases, the fashion model, images and tensors) and a few inputs made
// from them once per run (a TF.js folder, the fashion model as ONNX, small image folders).

import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { convert } from '../../src/convert.js';
import { FIXTURES, manifest } from '../helpers/fixtures.js';
import type { FileKind } from './mutate.js';

export type SeedKind = 'pth' | 'safetensors' | 'onnx' | 'hf' | 'tfjs' | 'npy' | 'images' | 'labels' | 'classes';

export interface Seed {
  readonly name: string;
  readonly kind: SeedKind;
  /** A file, or a folder (hf, tfjs, images). */
  readonly path: string;
  /** The image size the model takes (models only). */
  readonly imageSize?: number;
}

const MODEL_KINDS: readonly SeedKind[] = ['pth', 'safetensors', 'onnx', 'hf', 'tfjs'];
export const isModel = (s: Seed) => MODEL_KINDS.includes(s.kind);

/** Every seed; the made ones are written under `root` (once: later calls reuse them). */
export async function prepareSeeds(root: string): Promise<Seed[]> {
  mkdirSync(root, { recursive: true });
  const seeds: Seed[] = [];
  for (const m of manifest.models) {
    if (m.format === 'pth' && basename(m.path).startsWith('fashion')) continue;
    seeds.push({ name: m.name, kind: m.format, path: join(FIXTURES, m.path), imageSize: m.image_size });
  }
  for (const b of manifest.bad) seeds.push({ name: `bad:${b.name}`, kind: 'pth', path: join(FIXTURES, b.path), imageSize: 64 });
  for (const f of readdirSync(join(FIXTURES, 'edge'))) {
    seeds.push({ name: `edge:${f}`, kind: f.endsWith('.safetensors') ? 'safetensors' : 'pth', path: join(FIXTURES, 'edge', f), imageSize: 64 });
  }
  const fashionPth = join(FIXTURES, 'fashion', 'convnext_fashion.pth');
  seeds.push({ name: 'fashion', kind: 'pth', path: fashionPth, imageSize: 32 });

  const fashionOnnx = join(root, 'fashion.onnx');
  const tfjs = join(root, 'timm-tfjs');
  const made = (p: string) => statSync(p, { throwIfNoEntry: false }) !== undefined;
  if (!made(fashionOnnx)) await convert(fashionPth, fashionOnnx, { imageSize: 32, labelsFile: join(FIXTURES, 'fashion', 'classes.txt') });
  if (!made(tfjs)) await convert(join(FIXTURES, 'v1', 'timm.safetensors'), tfjs, { format: 'tfjs', imageSize: 64 });
  seeds.push({ name: 'made:fashion.onnx', kind: 'onnx', path: fashionOnnx, imageSize: 32 });
  seeds.push({ name: 'made:timm-tfjs', kind: 'tfjs', path: tfjs, imageSize: 64 });

  seeds.push({ name: 'images:val', kind: 'images', path: imageFolder(join(FIXTURES, 'fashion', 'val'), join(root, 'val12'), 12) });
  seeds.push({ name: 'images:calib', kind: 'images', path: imageFolder(join(FIXTURES, 'fashion', 'calib'), join(root, 'calib8'), 8) });
  seeds.push({ name: 'npy:golden', kind: 'npy', path: join(FIXTURES, 'golden', 'input.npy') });
  seeds.push({ name: 'npy:fashion', kind: 'npy', path: join(FIXTURES, 'fashion', 'val_input.npy') });
  seeds.push({ name: 'labels:val', kind: 'labels', path: join(root, 'val12', 'labels.txt') });
  seeds.push({ name: 'classes:fashion', kind: 'classes', path: join(FIXTURES, 'fashion', 'classes.txt') });
  return seeds;
}

/** The first `n` images of a labelled folder, with its labels.txt cut to them. */
function imageFolder(from: string, to: string, n: number): string {
  if (statSync(to, { throwIfNoEntry: false })) return to;
  mkdirSync(to, { recursive: true });
  const images = readdirSync(from).filter((f) => f.endsWith('.png')).sort().slice(0, n);
  for (const f of images) copyFileSync(join(from, f), join(to, f));
  const keep = new Set(images);
  const labels = readFileSync(join(from, 'labels.txt'), 'utf8').split('\n').filter((l) => keep.has(l.split(/\s+/)[0]));
  writeFileSync(join(to, 'labels.txt'), labels.join('\n') + '\n');
  return to;
}

/** What kind of bytes a file holds, for where the fuzzer edits it. */
export function fileKind(path: string): FileKind {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.txt' || ext === '.csv') return 'text';
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.onnx') return 'onnx';
  if (ext === '.npy') return 'npy';
  if (ext === '.png') return 'png';
  if (ext === '.pth' || ext === '.bin') {
    const head = readFileSync(path).subarray(0, 2);
    return head[0] === 0x50 && head[1] === 0x4b ? 'zip' : head[0] === 0x80 ? 'pickle' : 'bin';
  }
  return 'bin';
}

/** The files of a seed, sorted: the one file, or those of its folder (not recursing). */
export function seedFiles(seed: Seed): string[] {
  if (!statSync(seed.path).isDirectory()) return [seed.path];
  return readdirSync(seed.path).sort().map((f) => join(seed.path, f));
}
