// The committed PyTorch fixtures (fixtures/manifest.json, made by fixtures/make_fixtures.py) and
// the comparison every numerical test uses: max |error| ≤ 1e-4 × max |reference|, same top-1.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../../src/formats/npy.js';
import type { Tensor } from '../../src/graph/tensor.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const FIXTURES = join(ROOT, 'fixtures');

export interface ModelFixture {
  name: string;
  path: string;
  format: 'pth' | 'safetensors' | 'hf' | 'onnx';
  layout: string;
  version: 'v1' | 'v2';
  conv_mlp: boolean;
  depths: number[];
  widths: number[];
  num_classes: number;
  image_size: number;
  dtype: string;
  state_dict_key: string | null;
  final_ln_eps: number;
  input: string;
  output: string;
}

export interface BadFixture {
  name: string;
  path: string;
  expect: string;
}

export const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as {
  models: ModelFixture[];
  bad: BadFixture[];
};

export const fixturePath = (rel: string) => join(FIXTURES, rel);
export const checkpointFixtures = manifest.models.filter((m) => m.format !== 'onnx');

export function golden(m: ModelFixture): { input: Tensor; output: Tensor } {
  return { input: readNpy(fixturePath(m.input)), output: readNpy(fixturePath(m.output)) };
}

export const TOLERANCE = 1e-4;

/** Asserts max |got − want| ≤ tolerance × max |want| and the same argmax per row; returns the error ratio. */
export function assertClose(got: ArrayLike<number>, want: Tensor, what: string, tolerance = TOLERANCE): number {
  const ref = want.data as Float32Array;
  assert.equal(got.length, ref.length, `${what}: ${got.length} values, expected ${ref.length}`);
  let maxRef = 0;
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
  }
  const ratio = maxErr / maxRef;
  assert.ok(ratio <= tolerance, `${what}: max |error| ${maxErr.toExponential(2)} = ${ratio.toExponential(2)} × max |logit|, over ${tolerance}`);
  const cols = want.shape[want.shape.length - 1];
  for (let r = 0; r < ref.length / cols; r++) {
    const argmax = (a: ArrayLike<number>) => {
      let best = 0;
      for (let c = 1; c < cols; c++) if (a[r * cols + c] > a[r * cols + best]) best = c;
      return best;
    };
    assert.equal(argmax(got), argmax(ref), `${what}: top-1 differs in row ${r}`);
  }
  return ratio;
}
