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
  if (update) writeFileSync(HASHES, `${JSON.stringify(Object.fromEntries(Object.entries(seen).sort()), null, 2)}\n`);
});

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
  it('quantize --to int8 (Fashion, its calibration images)', async () => {
    const fp32 = join(dir, 'fashion.onnx');
    await convert(fashion, fp32, { imageSize: 32, cropPct: 1, labelsFile: fixturePath('fashion/classes.txt') });
    check('convert/fashion', digest(fp32));
    const out = join(dir, 'fashion-int8.onnx');
    await quantize(fp32, out, { to: 'int8', calib: fixturePath('fashion/calib') });
    check('quantize-int8/fashion', digest(out));
  });

  it('convert --format tfjs (v2_timm)', async () => {
    const m = checkpointFixtures.find((f) => f.name === 'v2_timm')!;
    const out = join(dir, 'v2_timm_tfjs');
    await convert(fixturePath(m.path), out, { imageSize: m.image_size, format: 'tfjs' });
    check('tfjs/v2_timm', digest(out, true));
  });
});
