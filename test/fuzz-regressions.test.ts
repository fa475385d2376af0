// What the fuzz suite found, each case as the fuzzer met it: a path that is a symbolic-link loop (or
// lies under a file) reached a bare statSync, whose throwIfNoEntry covers only a missing entry, and
// left as an internal error; protobufjs's own errors escaped the ONNX summary reader; a JSON parse
// error quoted the file's newlines into a message that must be one line.

import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { loadCheckpoint } from '../src/convnext/load.js';
import { loadOnnxModel } from '../src/convnext/import-onnx.js';
import { InputError } from '../src/errors.js';
import { readOnnxSummary } from '../src/formats/onnx-summary.js';
import { probe } from '../src/formats/registry.js';
import { apply, type Edit } from './fuzz/mutate.js';
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

describe('fuzz findings: the ONNX summary reader (validate reads it before onnxruntime)', () => {
  // ModelProto { ir_version: 8, metadata_props: <one byte: field 1, wire type 6> }
  const WIRE_TYPE_6 = Uint8Array.from([0x08, 0x08, 0x72, 0x01, 0x0e]);

  it('a metadata entry protobufjs cannot decode is an InputError', () => {
    const model = join(dir, 'wire6.onnx');
    writeFileSync(model, WIRE_TYPE_6);
    assert.throws(() => readOnnxSummary(model), refusedWith(/not a valid ONNX model \(its protobuf encoding is broken or truncated\)/));
  });

  it('validate refuses it in one line (fuzz: seed 1, case 83)', async () => {
    // the case as the fuzzer drew it: two edits of the fashion model converted to ONNX
    const model = join(dir, 'fashion.onnx');
    await convert(fixturePath('fashion/convnext_fashion.pth'), model, { imageSize: 32, labelsFile: fixturePath('fashion/classes.txt') });
    const edits: Edit[] = [
      { op: 'set', at: { pick: 'interesting', index: 728197115 }, value: 128 },
      { op: 'duplicate', at: { pick: 'interesting', index: 2043775552 }, length: 108 },
    ];
    writeFileSync(model, apply(readFileSync(model), 'onnx', edits));
    assertCliRefused(runCli('validate', model, '--ep', 'cpu', '--batch', '1'), /fashion\.onnx: not a valid ONNX model/, dir);
  });
});

describe('fuzz findings: JSON parse errors stay on one line', () => {
  // V8 quotes the text around the fault, here a control character between two newlines
  const BROKEN = '{\n  "image_std": [\n\u0001   29,\n  ]\n}';

  it('a Hugging Face preprocessor_config.json (fuzz: seed 1, case 565: inspect)', () => {
    const hf = join(dir, 'hf');
    cpSync(fixturePath('v1/hf'), hf, { recursive: true });
    writeFileSync(join(hf, 'preprocessor_config.json'), BROKEN);
    assertCliRefused(runCli('inspect', hf), /preprocessor_config\.json: cannot read JSON \(Unexpected token/, dir);
  });

  it('a TF.js model.json', async () => {
    const folder = join(dir, 'tfjs');
    await convert(fixturePath('v1/timm.safetensors'), folder, { format: 'tfjs', imageSize: 64 });
    writeFileSync(join(folder, 'model.json'), BROKEN);
    assertCliRefused(runCli('validate', folder, '--batch', 'none'), /model\.json: is not valid JSON \(Unexpected token/, dir);
  });
});
