// The command line as a user meets it: exit codes, one-line errors, --json, --quiet, and files that
// are never half-written or overwritten.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { assertCliRefused, runCli, type CliResult } from './helpers/cli.js';
import { assertClose, fixturePath, golden, manifest, ROOT } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = runCli;
const assertRefused = (r: CliResult, pattern: RegExp, output?: string) => assertCliRefused(r, pattern, dir, output);

const v1 = manifest.models.find((m) => m.name === 'v1_official')!;

describe('convnext convert', () => {
  it('writes a model that runs, prints a summary, and --json is machine-readable', async () => {
    const out = join(dir, 'v1.onnx');
    const r = cli('convert', fixturePath(v1.path), '-o', out, '--image-size', '64', '--json');
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.checkpoint.layout, 'official');
    assert.equal(summary.checkpoint.stateDictKey, 'model');
    assert.equal(summary.checkpoint.parameters > 0, true);
    assert.ok(summary.timings.read >= 0 && summary.timings.write >= 0);
    const { input, output } = golden(v1);
    assertClose((await runFloat(await createSession(readFileSync(out)), input)).data, output, 'cli output');
  });

  it('--quiet prints nothing on success', () => {
    const r = cli('convert', fixturePath(v1.path), '-o', join(dir, 'quiet.onnx'), '-q');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
  });

  it('is byte-for-byte deterministic', () => {
    const a = join(dir, 'a.onnx');
    const b = join(dir, 'b.onnx');
    assert.equal(cli('convert', fixturePath('v2/hf'), '-o', a, '-q').code, 0);
    assert.equal(cli('convert', fixturePath('v2/hf'), '-o', b, '-q').code, 0);
    assert.ok(readFileSync(a).equals(readFileSync(b)));
  });

  it('--external-data keeps weights beside the model, and onnxruntime loads them', async () => {
    const out = join(dir, 'ext.onnx');
    const r = cli('convert', fixturePath(v1.path), '-o', out, '--image-size', '64', '--external-data', '-q');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(statSync(`${out}.data`).size > statSync(out).size);
    const { input, output } = golden(v1);
    assertClose((await runFloat(await createSession(out), input)).data, output, 'external data');
  });

  it('never overwrites its input', () => {
    const copy = join(dir, 'input.pth');
    copyFileSync(fixturePath(v1.path), copy);
    const before = readFileSync(copy);
    assertRefused(cli('convert', copy, '-o', copy), /overwrite the input/);
    assert.ok(readFileSync(copy).equals(before));
  });

  it('refuses a missing output folder', () => {
    assertRefused(cli('convert', fixturePath(v1.path), '-o', join(dir, 'nope', 'x.onnx')), /output folder .* does not exist/);
  });

  it('refuses a missing input', () => {
    assertRefused(cli('convert', join(dir, 'missing.pth'), '-o', join(dir, 'x.onnx')), /missing\.pth: no such file/, join(dir, 'x.onnx'));
  });

  it('refuses usage errors with exit 2', () => {
    assert.equal(cli('convert', fixturePath(v1.path)).code, 2);
    assert.equal(cli('convert', fixturePath(v1.path), '-o', join(dir, 'x.onnx'), '--image-size', 'big').code, 2);
    assert.equal(cli('frobnicate').code, 2);
  });

  for (const bad of manifest.bad) {
    it(`refuses bad fixture ${bad.name} (${bad.expect})`, () => {
      const out = join(dir, `${bad.name}.onnx`);
      const r = cli('convert', fixturePath(bad.path), '-o', out);
      if (bad.expect === 'nan') {
        // NaN weights convert, with a warning that names the tensor
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /warning: .*weight has \d+ NaN\/Inf value/);
        return;
      }
      const expected: Record<string, RegExp> = {
        legacy: /legacy PyTorch serialization.*re-save/,
        'forbidden-global': /refusing to load global '(posix|os|nt)\.system'/,
        module: /refusing to load global .*save model\.state_dict\(\) instead/,
        'not-convnext': /not a ConvNeXt checkpoint/,
      };
      assertRefused(r, expected[bad.expect] ?? /./, out);
    });
  }

  it('nothing in a malicious checkpoint runs', () => {
    const marker = '/tmp/convnext-pwned';
    rmSync(marker, { force: true });
    cli('inspect', fixturePath(manifest.bad.find((b) => b.expect === 'forbidden-global')!.path));
    assert.equal(existsSync(marker), false);
  });

  it('refuses truncated and corrupt checkpoints', () => {
    const bytes = readFileSync(fixturePath(v1.path));
    for (const [name, data] of [
      ['truncated.pth', bytes.subarray(0, Math.floor(bytes.length / 2))],
      ['corrupt.pth', Buffer.concat([bytes.subarray(0, 200), Buffer.alloc(400, 0x5a), bytes.subarray(600)])],
      ['garbage.pth', Buffer.from('this is not a checkpoint at all\n')],
      ['empty.pth', Buffer.alloc(0)],
    ] as const) {
      const p = join(dir, name);
      writeFileSync(p, data);
      assertRefused(cli('convert', p, '-o', join(dir, `${name}.onnx`)), new RegExp(`${name}: `), join(dir, `${name}.onnx`));
    }
    const st = readFileSync(fixturePath('v1/timm.safetensors'));
    const p = join(dir, 'truncated.safetensors');
    writeFileSync(p, st.subarray(0, st.length - 100));
    assertRefused(cli('convert', p, '-o', join(dir, 't.onnx')), /truncated\.safetensors: /, join(dir, 't.onnx'));
  });
});

describe('convnext inspect', () => {
  it('describes a checkpoint, with --json', () => {
    const r = cli('inspect', fixturePath('v2/hf'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.kind, 'checkpoint');
    assert.equal(info.layout, 'hf');
    assert.equal(info.version, 'v2');
    assert.deepEqual(info.depths, [2, 1, 2, 1]);
    assert.deepEqual(info.widths, [8, 16, 24, 32]);
    assert.equal(info.numClasses, 10);
    assert.equal(info.imageSize, 64);
    assert.equal(info.labels, 10);
  });

  it('describes an ONNX model with its metadata', () => {
    const out = join(dir, 'meta.onnx');
    assert.equal(cli('convert', fixturePath('v1/hf'), '-o', out, '-q').code, 0);
    const info = JSON.parse(cli('inspect', out, '--json').stdout);
    assert.equal(info.kind, 'onnx');
    assert.equal(info.opsets[''], 17);
    assert.deepEqual(info.inputs[0], { name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 64, 64] });
    assert.deepEqual(info.outputs[0], { name: 'logits', dtype: 'float32', shape: ['batch', 10] });
    assert.equal(JSON.parse(info.metadata.labels).length, 10);
    const pre = JSON.parse(info.metadata.preprocessing);
    assert.deepEqual(pre.mean, [0.485, 0.456, 0.406]);
    assert.equal(pre.crop, 64);
    const source = JSON.parse(info.metadata.source);
    assert.equal(source.layout, 'hf');
    assert.match(info.metadata.converter, /^convnext-toolchain \d+\.\d+\.\d+$/);
    assert.equal(info.ops.LayerNormalization, 11);
    assert.equal(info.ops.Erf, 6);
  });
});
