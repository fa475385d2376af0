// The probes issue 11 was filed with, kept as regressions: every verb reads ONNX external data
// through the one reader, with the folder check; a malformed attribute in a user's ONNX file is a
// bad input (exit 2, naming the node), not an internal error.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { convert } from '../src/convert.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { fixturePath, manifest } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-reroom-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const v1 = manifest.models.find((m) => m.name === 'v1_timm')!;

/** A model with external data in `folder`, written by convert. */
async function externalModel(folder: string): Promise<string> {
  mkdirSync(folder, { recursive: true });
  const out = join(folder, 'model.onnx');
  await convert(fixturePath(v1.path), out, { imageSize: v1.image_size, externalData: true });
  return out;
}

/** Rewrites an ONNX file through onnx-proto's ModelProto. */
function editModel(path: string, edit: (m: onnxProto.onnx.ModelProto) => void): void {
  const model = onnxProto.onnx.ModelProto.decode(readFileSync(path));
  edit(model);
  writeFileSync(path, onnxProto.onnx.ModelProto.encode(model).finish());
}

describe('external data stays inside the model folder, for every verb', () => {
  it('a location with ../ is refused by inspect and convert (exit 2)', async () => {
    const model = await externalModel(join(dir, 'climb', 'm'));
    renameSync(`${model}.data`, join(dir, 'climb', 'outside.bin'));
    editModel(model, (m) => {
      for (const t of m.graph!.initializer!) for (const e of t.externalData ?? []) if (e.key === 'location') e.value = '../outside.bin';
    });
    for (const args of [['inspect', model], ['convert', model, '-o', join(dir, 'climb', 'out.onnx')]]) {
      assertCliRefused(runCli(...args), /external data location \.\.\/outside\.bin leaves the model's folder/, dir);
    }
  });

  it('a side file that is a symbolic link out of the folder is refused by inspect and convert', async () => {
    const model = await externalModel(join(dir, 'link', 'm'));
    mkdirSync(join(dir, 'link', 'elsewhere'));
    renameSync(`${model}.data`, join(dir, 'link', 'elsewhere', 'model.onnx.data'));
    symlinkSync(join(dir, 'link', 'elsewhere', 'model.onnx.data'), `${model}.data`);
    for (const args of [['inspect', model], ['convert', model, '-o', join(dir, 'link', 'out.onnx')]]) {
      assertCliRefused(runCli(...args), /leaves the model's folder through a symbolic link/, dir);
    }
  });

  it('inside the folder, inspect reads it', async () => {
    const model = await externalModel(join(dir, 'fine'));
    const r = runCli('inspect', model, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).parameters > 0);
  });
});

describe('ONNX attributes are checked at import', () => {
  const exported = fixturePath(manifest.models.find((m) => m.name === 'onnx_v1_opset17')!.path);
  const withConv = (name: string, edit: (a: onnxProto.onnx.IAttributeProto) => void): { model: string; node: string } => {
    const model = join(dir, name);
    writeFileSync(model, readFileSync(exported));
    let node = '';
    editModel(model, (m) => {
      const conv = m.graph!.node!.find((n) => n.opType === 'Conv' && n.attribute!.some((a) => a.name === 'strides'))!;
      node = conv.name!;
      edit(conv.attribute!.find((a) => a.name === 'strides')!);
    });
    return { model, node };
  };

  it('an attribute of the wrong kind exits 2 naming the node', () => {
    const { model, node } = withConv('float-strides.onnx', (a) => {
      a.type = onnxProto.onnx.AttributeProto.AttributeType.FLOAT;
      a.f = 2;
      a.ints = [];
    });
    const escaped = node.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    assertCliRefused(runCli('convert', model, '-o', join(dir, 'o.onnx')), new RegExp(`node ${escaped} \\(Conv\\): attribute strides is a float, ONNX says ints`), dir);
  });

  it('a Conv stride of 0 exits 2 naming the node', () => {
    const { model } = withConv('zero-strides.onnx', (a) => {
      a.ints = [0, 0];
    });
    assertCliRefused(runCli('convert', model, '-o', join(dir, 'o.onnx')), /\(Conv\): attribute strides has 0, which must be at least 1/, dir);
  });
});
