// What a shipped .tflite leaves out and shares: internal tensors go unnamed unless --keep-names (for
// convert and quantize alike), equal vectors (zero points, scales, shapes) are one vector in the
// file, and LiteRT runs the smaller file to the very outputs of the fully named one.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { tensor } from '../src/graph/tensor.js';
import { quantize } from '../src/quantize/index.js';
import { fixturePath, golden, manifest } from './helpers/fixtures.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { runTfliteFile } from './helpers/litert.js';
import { readTflite, type TfliteSummary } from './helpers/tflite-read.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-tflite-names-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const F = (p: string) => fixturePath(join('fashion', p));
const fashion = ['--image-size', '32', '--crop-pct', '1', '-q'];

/** The tensors that carry a name. */
const named = (f: TfliteSummary) => f.tensors.flatMap((t, i) => (t.name ? [i] : []));

describe('.tflite tensor names: only the input and output by default, all with --keep-names', () => {
  for (const [verb, args] of [['convert', ['--weights', 'int8']], ['quantize', ['--to', 'int8-weights']]] as const) {
    it(`${verb} --format tflite`, () => {
      const [short, long] = [join(dir, `${verb}.tflite`), join(dir, `${verb}-named.tflite`)];
      assert.equal(runCli(verb, F('convnext_fashion.pth'), '-o', short, '--format', 'tflite', ...args, ...fashion).code, 0);
      assert.equal(runCli(verb, F('convnext_fashion.pth'), '-o', long, '--format', 'tflite', ...args, ...fashion, '--keep-names').code, 0);
      const [s, l] = [readTflite(readFileSync(short)), readTflite(readFileSync(long))];
      assert.deepEqual(named(s), [...s.inputs, ...s.outputs]);
      assert.deepEqual(s.inputs.map((i) => s.tensors[i].name), ['pixel_values']);
      assert.deepEqual(s.outputs.map((i) => s.tensors[i].name), ['logits']);
      assert.equal(named(l).length, l.tensors.length, 'every tensor named');
      assert.ok(l.tensors.some((t) => t.name === 'stem.conv'), 'a layer is found by its name');
      assert.deepEqual(s.signature, l.signature);
      assert.ok(readFileSync(short).length < readFileSync(long).length);
    });
  }

  it('convert refuses --keep-names for a format it does not apply to', () => {
    const out = join(dir, 'named.onnx');
    assertCliRefused(runCli('convert', F('convnext_fashion.pth'), '-o', out, '--keep-names', ...fashion), /--keep-names applies to --format tflite/, dir, out);
  });
});

describe('.tflite shares equal vectors', () => {
  it('one vector per distinct zero points, scales and shapes; LiteRT gives the named file’s outputs', async () => {
    const m = manifest.models.find((x) => x.name === 'v2_official')!;
    const { input } = golden(m);
    const files: Record<string, [string, string]> = {};
    const common = { imageSize: m.image_size, stateDictKey: m.state_dict_key ?? undefined };
    for (const weights of ['float16', 'int8', 'int8-hybrid'] as const) {
      files[weights] = [join(dir, `${weights}.tflite`), join(dir, `${weights}-named.tflite`)];
      for (const [path, keepNames] of [[files[weights][0], false], [files[weights][1], true]] as const) {
        await convert(fixturePath(m.path), path, { format: 'tflite', ...common, tflite: { weights, batch: input.shape[0], keepNames } });
      }
    }
    files.full = [join(dir, 'full.tflite'), join(dir, 'full-named.tflite')];
    for (const [path, keepNames] of [[files.full[0], false], [files.full[1], true]] as const) {
      await quantize(F('convnext_fashion.pth'), path, { to: 'int8', format: 'tflite', imageSize: 32, cropPct: 1, calib: F('calib'), calibSize: 16, tflite: { keepNames } });
    }
    for (const [what, [short, long]] of Object.entries(files)) {
      const f = readTflite(readFileSync(short));
      // content → the offsets holding it: exactly one each
      const owners = (key: (t: (typeof f.tensors)[number]) => string | undefined, at: (t: (typeof f.tensors)[number]) => number) => {
        const byContent = new Map<string, Set<number>>();
        for (const t of f.tensors) {
          const k = key(t);
          if (k !== undefined) byContent.set(k, (byContent.get(k) ?? new Set()).add(at(t)));
        }
        for (const [k, offsets] of byContent) assert.equal(offsets.size, 1, `${what}: ${k.slice(0, 40)} written ${offsets.size} times`);
        return byContent.size;
      };
      owners((t) => t.shape.join(','), (t) => t.at.shape);
      const q = f.tensors.filter((t) => t.quantization);
      if (what !== 'float16') {
        const zeros = owners((t) => (t.quantization ? t.quantization.zeroPoint.join(',') : undefined), (t) => t.at.zeroPoint);
        assert.ok(zeros < q.length, `${what}: ${zeros} zero point vectors for ${q.length} quantized tensors`);
        owners((t) => (t.quantization ? t.quantization.scale.join(',') : undefined), (t) => t.at.scale);
      }
      const y = what === 'full' ? undefined : await runTfliteFile(short, input);
      if (y) assert.deepEqual(y.data, (await runTfliteFile(long, input)).data, `${what}: the same outputs with and without names`);
    }
    // the full-integer file runs on a Fashion-sized image
    const image = tensor('float32', [1, 3, 32, 32], Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i)));
    assert.deepEqual((await runTfliteFile(files.full[0], image)).data, (await runTfliteFile(files.full[1], image)).data, 'full int8: the same outputs');
  });
});
