// The refactoring guard: the bytes convert, quantize and the TF.js writer produce are pinned by their
// sha256. A change that means to move them updates test/output-hashes.json in the same commit
// (UPDATE_OUTPUT_HASHES=1 npm test rewrites it); any other change must leave them where they are.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { quantize } from '../src/quantize/index.js';
import { checkpointFixtures, fixturePath, manifest, ROOT } from './helpers/fixtures.js';

const HASHES = join(ROOT, 'test', 'output-hashes.json');
const update = process.env.UPDATE_OUTPUT_HASHES === '1';
const pinned = JSON.parse(readFileSync(HASHES, 'utf8')) as Record<string, string>;
const seen: Record<string, string> = {};
const dir = mkdtempSync(join(tmpdir(), 'convnext-hashes-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
  if (update) writeFileSync(HASHES, `${JSON.stringify(Object.fromEntries(Object.entries(updatedPins()).sort()), null, 2)}\n`);
});

// quantize's activation ranges come from onnxruntime running the fp32 model, and onnxruntime picks
// its CPU kernels by instruction set: the last bits of those floats, and so the int8 file's bytes,
// differ between an AVX2 and an AVX-512 machine. Such a hash is pinned per kernel class ('name@class');
// a machine of a class with no pin skips that check and says how to pin it. The classes may be finer
// than onnxruntime's kernel choice (AVX-512 without VNNI likely computes as with it): a finer class
// costs a skip, never a false failure.
function kernelClass(): string {
  let flags = new Set<string>();
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').match(/^(?:flags|Features)\s*:(.*)$/m)?.[1] ?? '';
    flags = new Set(line.trim().split(/\s+/));
  } catch {
    // no /proc: the class is the architecture alone
  }
  const level = flags.has('avx512_vnni') ? 'avx512vnni' : flags.has('avx512f') ? 'avx512' : flags.has('avx_vnni') ? 'avxvnni'
    : flags.has('avx2') ? 'avx2' : flags.has('asimddp') ? 'dotprod' : 'base';
  return `${process.arch}-${level}`;
}
const KERNEL_CLASS = kernelClass();

// Pins of other kernel classes stay, unless this class's pin of the same output moved (a first pin of
// this class moves nothing): then they are stale too, and dropping them makes those machines skip
// (and say so) rather than fail.
function updatedPins(): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [key, hash] of Object.entries(pinned)) {
    const [name, cls] = key.split('@');
    if (!cls || key in seen) continue;
    const mine = `${name}@${KERNEL_CLASS}`;
    if (!(mine in pinned) || !(mine in seen) || seen[mine] === pinned[mine]) kept[key] = hash;
  }
  return { ...kept, ...seen };
}

/** sha256 of a file, or of a folder's files in name order (name and bytes of each). */
function digest(path: string, folder = false): string {
  const h = createHash('sha256');
  if (!folder) return h.update(readFileSync(path)).digest('hex');
  for (const name of readdirSync(path).sort()) h.update(name).update('\0').update(readFileSync(join(path, name)));
  return h.digest('hex');
}

function check(name: string, hash: string): void {
  seen[name] = hash;
  if (!update) assert.equal(hash, pinned[name], `${name}: output bytes changed (sha256 ${hash}); if that is meant, run UPDATE_OUTPUT_HASHES=1 npm test`);
}

/** check() for an output whose bytes depend on onnxruntime's CPU kernels; false when this class has no pin. */
function checkPerKernelClass(name: string, hash: string): boolean {
  const key = `${name}@${KERNEL_CLASS}`;
  if (!update && !(key in pinned)) return false;
  check(key, hash);
  return true;
}

describe('output hashes', () => {
  for (const m of checkpointFixtures) {
    it(`convert ${m.name}`, async () => {
      const out = join(dir, `${m.name}.onnx`);
      await convert(fixturePath(m.path), out, { stateDictKey: m.state_dict_key ?? undefined, imageSize: m.image_size });
      check(`convert/${m.name}`, digest(out));
    });
  }

  for (const m of manifest.models.filter((f) => f.format === 'onnx')) {
    it(`convert ${m.name} (an exported ONNX model through the passes)`, async () => {
      const out = join(dir, `${m.name}.onnx`);
      await convert(fixturePath(m.path), out);
      check(`convert/${m.name}`, digest(out));
    });
  }

  const fashion = fixturePath('fashion/convnext_fashion.pth');
  it('quantize --to int8 (Fashion, its calibration images)', async (t) => {
    const fp32 = join(dir, 'fashion.onnx');
    await convert(fashion, fp32, { imageSize: 32, cropPct: 1, labelsFile: fixturePath('fashion/classes.txt') });
    check('convert/fashion', digest(fp32));
    const out = join(dir, 'fashion-int8.onnx');
    await quantize(fp32, out, { to: 'int8', calib: fixturePath('fashion/calib') });
    if (!checkPerKernelClass('quantize-int8/fashion', digest(out))) {
      t.skip(`no pinned hash for CPU kernel class ${KERNEL_CLASS}: run UPDATE_OUTPUT_HASHES=1 npm test on such a machine to pin one`);
    }
  });

  // no calibration and no onnxruntime in the making: the same bytes on every CPU
  it('quantize --to fp16, int8-weights, int4-weights (Fashion)', async () => {
    const fp32 = join(dir, 'fashion-weights.onnx');
    await convert(fashion, fp32, { imageSize: 32, cropPct: 1, labelsFile: fixturePath('fashion/classes.txt') });
    for (const to of ['fp16', 'int8-weights', 'int4-weights'] as const) {
      const out = join(dir, `fashion-${to}.onnx`);
      await quantize(fp32, out, { to });
      check(`quantize-${to}/fashion`, digest(out));
    }
  });

  it('convert --format tfjs (v2_timm)', async () => {
    const m = checkpointFixtures.find((f) => f.name === 'v2_timm')!;
    const out = join(dir, 'v2_timm_tfjs');
    await convert(fixturePath(m.path), out, { imageSize: m.image_size, format: 'tfjs' });
    check('tfjs/v2_timm', digest(out, true));
  });
});
