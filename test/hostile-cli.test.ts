// Issue 13's command-line cases, each a regression test: sizes that would reach an allocation
// unchecked (image size, batch, crop, a model's preprocessing metadata, a ConstantOfShape in an
// input graph), file-system errors on writing, calibration data that would make a meaningless int8
// model, and an --exclude that leaves nothing to quantize. Every one is a clean refusal (exit 2, one
// line, no stack trace, no leftover file) in under 2 s and under 1 GiB.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { convert } from '../src/convert.js';
import { writeNpy } from '../src/formats/npy.js';
import { float32 } from '../src/graph/tensor.js';
import { probeWebgpuAdapter } from '../src/runtime/webgpu-probe.js';
import { assertCliRefused, BIN, HANG_MS, runCliMeasured } from './helpers/cli.js';
import { fixturePath, manifest } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-hostile-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ckpt = fixturePath(manifest.models.find((m) => m.name === 'v1_timm')!.path);
const model = join(dir, 'm.onnx');
const calib = fixturePath('fashion/calib');

before(async () => {
  await convert(ckpt, model, { imageSize: 64 });
});

/** A refusal as issue 13 wants it: exit 2 with one line matching `pattern`, quickly, in bounded memory. */
function refused(args: string[], pattern: RegExp): void {
  const r = runCliMeasured(...args);
  assertCliRefused(r, pattern, dir);
  assert.ok(r.cpuMs < 2000 && r.ms < HANG_MS, `refused in ${r.cpuMs.toFixed(0)} ms of CPU, ${r.ms.toFixed(0)} ms of wall time`);
  assert.ok(r.maxRssBytes < 2 ** 30, `peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB`);
}

/** A copy of the model whose metadata entry `key` is `value`. */
function withMetadata(name: string, key: string, value: string): string {
  const m = onnxProto.onnx.ModelProto.decode(readFileSync(model));
  m.metadataProps = [...(m.metadataProps ?? []).filter((p) => p.key !== key), { key, value }];
  const out = join(dir, name);
  writeFileSync(out, onnxProto.onnx.ModelProto.encode(m).finish());
  return out;
}

describe('sizes are checked before anything is allocated', () => {
  it('--image-size 100000, and --verify --image-size 20000 (no 4.8 GB probe input)', () => {
    refused(['convert', ckpt, '-o', join(dir, 'a.onnx'), '--image-size', '100000'], /--image-size: image size 100000 must be a whole number from 32 to 4096/);
    refused(['convert', ckpt, '-o', join(dir, 'a.onnx'), '--verify', '--image-size', '20000'], /image size 20000 must be/);
  });

  it('validate --batch 100000 and 1e9', () => {
    refused(['validate', model, '--ep', 'cpu', '--batch', '100000'], /--batch: a batch of 100000 images of \[3, 64, 64\] is 4\.6 GiB of input; the limit is 1 GiB/);
    refused(['validate', model, '--ep', 'cpu', '--batch', '1000000000'], /--batch: a batch of 1000000000 images/);
  });

  it('quantize --crop-pct 0.005 and 1e-300', () => {
    for (const pct of ['0.005', '1e-300']) refused(['quantize', model, '-o', join(dir, 'q.onnx'), '--to', 'int8', '--calib', calib, '--crop-pct', pct], /--crop-pct: crop-pct .* must be between 0\.125 and 1/);
  });

  it("a model's preprocessing metadata: resize 100000, std 0, a std of the wrong length, strings", () => {
    const good = { resize: 73, crop: 64, interpolation: 'bicubic', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    const cases: [string, unknown, RegExp][] = [
      ['resize', { ...good, resize: 100000 }, /resize 100000 must be a whole number from the crop \(64\) to 512/],
      ['std0', { ...good, std: [0, 1, 1] }, /std \[0,1,1\] must be positive/],
      ['std2', { ...good, std: [1, 1] }, /std \[1,1\] must be three finite numbers/],
      ['strings', { ...good, mean: ['a', 'b', 'c'] }, /mean \["a","b","c"\] must be three finite numbers/],
    ];
    for (const [name, p, pattern] of cases) {
      const m = withMetadata(`${name}.onnx`, 'preprocessing', JSON.stringify(p));
      refused(['validate', m, '--ep', 'cpu', '--batch', 'none', '--data', fixturePath('fashion/val'), '--limit', '4'], pattern);
    }
  });

  it('a ConstantOfShape to [100000, 100000] in an input graph is not evaluated', async () => {
    const m = onnxProto.onnx.ModelProto.decode(readFileSync(fixturePath(manifest.models.find((f) => f.name === 'onnx_v1_opset17')!.path)));
    const shape = { name: 'huge_shape', dims: [2], dataType: 7, int64Data: [100000, 100000] };
    m.graph!.initializer = [...(m.graph!.initializer ?? []), shape];
    m.graph!.node = [...(m.graph!.node ?? []), { opType: 'ConstantOfShape', name: 'huge', input: ['huge_shape'], output: ['huge_out'] }];
    const input = join(dir, 'huge.onnx');
    writeFileSync(input, onnxProto.onnx.ModelProto.encode(m).finish());
    const r = runCliMeasured('convert', input, '-o', join(dir, 'huge-out.onnx'));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.maxRssBytes < 2 ** 30, `peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB (the 40 GB tensor was never made)`);
  });
});

describe('special files and link loops as inputs (found by the fuzz suite)', () => {
  it('a symbolic-link loop as the model or the data set, a FIFO as the .npy data set', () => {
    const loop = join(dir, 'loop-a');
    symlinkSync(join(dir, 'loop-b'), loop);
    symlinkSync(loop, join(dir, 'loop-b'));
    refused(['convert', loop, '-o', join(dir, 'l.onnx')], /loop-a: too many levels of symbolic links/);
    refused(['validate', model, '--data', loop, '--batch', 'none', '--ep', 'cpu', '--json', join(dir, 'l.json')], /loop-a: no such file or folder/);
    const fifo = join(dir, 'fifo.npy');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    refused(['validate', model, '--data', fifo, '--batch', 'none', '--ep', 'cpu'], /fifo\.npy: a data set is a folder of images or a \.npy tensor .*not a regular file/);
  });
});

describe('file-system errors on writing are bad input, naming the path', () => {
  it("-o '', a name too long, a file over ulimit -f", () => {
    refused(['convert', ckpt, '-o', '', '--image-size', '64'], /the output path is empty/);
    refused(['convert', ckpt, '-o', join(dir, `${'x'.repeat(300)}.onnx`), '--image-size', '64'], /the path is too long/);
    const big = join(dir, 'big.onnx');
    const r = spawnSync('bash', ['-c', `ulimit -f 10; exec "${process.execPath}" "${BIN}" convert "${ckpt}" -o "${big}" --image-size 64`], { encoding: 'utf8' });
    assertCliRefused({ code: r.status, stdout: r.stdout, stderr: r.stderr }, /big\.onnx: cannot write: the file is larger than this file system \(or ulimit -f\) allows/, dir, big);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp')), []);
  });
});

describe('calibration data that would make a meaningless int8 model', () => {
  const npy = (name: string, n: number, fill: (i: number) => number) => {
    const t = float32([n, 3, 64, 64]);
    (t.data as Float32Array).forEach((_, i, a) => (a[i] = fill(i)));
    const p = join(dir, `${name}.npy`);
    writeFileSync(p, writeNpy(t));
    return p;
  };
  it('0 images, NaN, Inf, 3e38', () => {
    const q = (data: string) => ['quantize', model, '-o', join(dir, 'q.onnx'), '--to', 'int8', '--calib', data];
    refused(q(npy('empty', 0, () => 0)), /holds no images/);
    refused(q(npy('nan', 2, (i) => (i % 7 ? 0.1 : NaN))), /of 24576 values are NaN or infinite/);
    refused(q(npy('inf', 2, (i) => (i === 5 ? Infinity : 0.1))), /1 of 24576 values are NaN or infinite/);
    refused(q(npy('huge', 2, (i) => (i % 2 ? 3e38 : 0))), /12288 of 24576 values exceed ±10000: not normalised images/);
  });
});

describe('quantize --exclude that leaves nothing to quantize', () => {
  it("--exclude '*'", () => {
    for (const to of ['int8', 'int8-weights']) {
      refused(['quantize', model, '-o', join(dir, 'q.onnx'), '--to', to, '--calib', calib, '--exclude', '*'], /--exclude '\*' names every layer: nothing would be quantized/);
    }
  });
});

describe("Dawn's adapter-probing lines stay out of stderr", { skip: probeWebgpuAdapter().ok && 'this machine has a WebGPU adapter' }, () => {
  it('--ep webgpu without an adapter: one line, no C++ source locations', () => {
    const r = runCliMeasured('validate', model, '--ep', 'webgpu', '--batch', '1');
    assertCliRefused(r, /--ep webgpu cannot run here \(webgpu: Failed to get a WebGPU adapter/, dir);
    assert.doesNotMatch(r.stderr, /dawn|PhysicalDeviceVk|While initializing adapter/);
  });

  it('--ep auto falls back to the CPU silently and says why in the report', () => {
    const r = runCliMeasured('validate', model, '--ep', 'auto', '--batch', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /dawn|PhysicalDeviceVk|While initializing adapter/);
    assert.equal(JSON.parse(r.stdout).model.fallbacks[0].provider, 'webgpu');
  });
});
