// Start-up pays only for what a command uses: --version and convert load no native runtime
// (onnxruntime, libvips/sharp, TF.js), so a plain conversion is not slowed by them. Read from the
// process's own memory map at exit, which names every shared library it loaded (Linux).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN } from './helpers/cli.js';
import { fixturePath, manifest } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const hook = join(dir, 'maps.mjs');
writeFileSync(
  hook,
  `import { readFileSync } from 'node:fs';
process.on('exit', () => {
  const libs = readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5] ?? '').filter((p) => /onnxruntime|vips|sharp|tfjs/.test(p));
  process.stderr.write('native: ' + JSON.stringify([...new Set(libs)]) + '\\n');
});
`,
);

function nativeLibraries(...args: string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', hook, BIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const line = r.stderr.split('\n').find((l) => l.startsWith('native: '));
  assert.ok(line, r.stderr);
  return JSON.parse(line.slice('native: '.length));
}

describe('start-up', { skip: !existsSync('/proc/self/maps') && 'no /proc/self/maps on this system' }, () => {
  it('--version loads no native runtime', () => {
    assert.deepEqual(nativeLibraries('--version'), []);
  });

  it('convert loads no native runtime; validate does load onnxruntime (the check can see one)', () => {
    const m = manifest.models.find((f) => f.name === 'v1_timm')!;
    const out = join(dir, 'v1.onnx');
    assert.deepEqual(nativeLibraries('convert', fixturePath(m.path), '-o', out, '--image-size', String(m.image_size), '-q'), []);
    assert.ok(nativeLibraries('validate', out, '--batch', '1', '--ep', 'cpu', '-q').some((l) => /onnxruntime/.test(l)));
  });
});
