// What the fuzz suite found, each case as the fuzzer met it: a path that is a symbolic-link loop (or
// lies under a file) reached a bare statSync, whose throwIfNoEntry covers only a missing entry, and
// left as an internal error.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { loadCheckpoint } from '../src/convnext/load.js';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { InputError } from '../src/errors.js';
import { probe } from '../src/formats/registry.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { fixturePath } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-fuzz-found-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A symbolic link to itself, named `name`. */
function loop(name: string): string {
  const p = join(dir, name);
  symlinkSync(name, p);
  return p;
}

const refusedWith = (pattern: RegExp) => (e: unknown) => e instanceof InputError && pattern.test(e.message);

describe('fuzz findings: symbolic-link loops and paths under a file', () => {
  it('inspect of a model that is a link loop exits 2 (fuzz: inspect case-143, seed 9)', () => {
    const model = loop('loop.onnx');
    assertCliRefused(runCli('inspect', model), /loop\.onnx: too many levels of symbolic links/, dir);
  });

  it('loadCheckpoint of a link loop (fuzz: {"reader":"loadCheckpoint","seed":"v1_timm","change":{"file":0,"fs":"loop"}})', async () => {
    await assert.rejects(loadCheckpoint(loop('timm.safetensors')), refusedWith(/too many levels of symbolic links/));
  });

  it('loadOnnxModel of a link loop (fuzz: {"reader":"loadOnnxModel","seed":"onnx_v1_opset13","change":{"file":0,"fs":"loop"}})', () => {
    assert.throws(() => loadOnnxModel(loop('v1_opset13.onnx')), refusedWith(/too many levels of symbolic links/));
  });

  it('a path under a file is a missing file, not ENOTDIR', async () => {
    const file = join(dir, 'plain.onnx');
    copyFileSync(fixturePath('onnx/v1_opset13.onnx'), file);
    await assert.rejects(probe(join(file, 'x')), refusedWith(/no such file or folder/));
  });

  it('external data that is a link loop', async () => {
    const model = join(dir, 'external.onnx');
    await convert(fixturePath('v1/timm.safetensors'), model, { imageSize: 64, externalData: true });
    const data = readdirSync(dir).find((f) => f.startsWith('external.onnx') && f !== 'external.onnx')!;
    unlinkSync(join(dir, data));
    symlinkSync(data, join(dir, data));
    assert.throws(() => loadOnnxModel(model), refusedWith(/too many levels of symbolic links|is missing/));
  });
});
