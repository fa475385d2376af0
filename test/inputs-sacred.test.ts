// Every path a command reads is an input, and no output may land on one (issue 13's data-loss
// cases): report files onto the model, an image or labels.txt of the data set; a quantized model onto
// the calibration labels or an image; through symbolic and hard links; a TF.js folder that holds the
// input; two outputs on one file. Each is refused before any work (exit 2, naming both paths) and
// leaves every input byte for byte as it was.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { assertCliRefused, runCli } from './helpers/cli.js';
import { fixturePath } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-sacred-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'fashion.onnx');
const data = join(dir, 'val');
const calib = join(dir, 'calib');

/** sha256 of every file below the work folder, by path: what an input check must leave alone. */
function snapshot(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(p, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** A small labelled image folder copied from the Fashion fixture. */
function imageFolder(to: string, from: string, n: number): void {
  mkdirSync(to);
  const lines = readFileSync(fixturePath(`fashion/${from}/labels.txt`), 'utf8').trim().split('\n').slice(0, n);
  for (const l of lines) copyFileSync(fixturePath(`fashion/${from}/${l.split(' ')[0]}`), join(to, l.split(' ')[0]));
  writeFileSync(join(to, 'labels.txt'), `${lines.join('\n')}\n`);
}

before(async () => {
  await convert(fixturePath('fashion/convnext_fashion.pth'), model, { imageSize: 32, cropPct: 1 });
  imageFolder(data, 'val', 8);
  imageFolder(calib, 'calib', 8);
});

/** Runs the command, asserts a clean refusal naming `names`, and that no file changed. */
function refusedUnchanged(args: string[], ...names: RegExp[]): void {
  const before = snapshot();
  const r = runCli(...args);
  assertCliRefused(r, names[0], dir);
  for (const n of names.slice(1)) assert.match(r.stderr, n);
  assert.deepEqual(snapshot(), before, 'every file as it was');
}

const validate = (...more: string[]) => ['validate', model, '--data', data, '--batch', 'none', '--ep', 'cpu', ...more];
const quantize = (...more: string[]) => ['quantize', model, '--to', 'int8', '--calib', calib, ...more];

describe('inputs are sacred', () => {
  it('validate --json onto the model it validates', () => {
    refusedUnchanged(validate('--json', model), /the --json report would overwrite the input .*fashion\.onnx \(the model\)/);
  });

  it('validate --html onto an image, --junit onto labels.txt of the data set', () => {
    refusedUnchanged(validate('--html', join(data, 'test_00000.png')), /the --html report would overwrite the input .*test_00000\.png \(a file of the data set\)/);
    refusedUnchanged(validate('--junit', join(data, 'labels.txt')), /the --junit report would overwrite the input .*labels\.txt \(a file of the data set\)/);
  });

  it('validate --reference and its report on one file, and two reports on one file', () => {
    refusedUnchanged([...validate('--reference', model), '--json', model], /would overwrite the input/);
    refusedUnchanged(validate('--json', join(dir, 'r.txt'), '--html', join(dir, 'r.txt')), /the --html report and the --json report are the same file/);
  });

  it('quantize -o onto the calibration labels or an image', () => {
    refusedUnchanged(quantize('-o', join(calib, 'labels.txt')), /the output model would overwrite the input .*labels\.txt \(a file of the calibration images\)/);
    const image = readdirSync(calib).find((f) => f.endsWith('.png'))!;
    refusedUnchanged(quantize('-o', join(calib, image)), /would overwrite the input .*\.png \(a file of the calibration images\)/);
  });

  it('through a symbolic link and a hard link to the model', () => {
    const soft = join(dir, 'soft.onnx');
    const hard = join(dir, 'hard.onnx');
    symlinkSync(model, soft);
    linkSync(model, hard);
    refusedUnchanged(validate('--json', soft), /soft\.onnx: the --json report would overwrite the input .*fashion\.onnx/);
    refusedUnchanged(['convert', model, '-o', hard], /hard\.onnx: the output model would overwrite the input .*fashion\.onnx/);
    refusedUnchanged(quantize('-o', soft), /would overwrite the input .*fashion\.onnx \(the input model\)/);
  });

  it("onto the model's external data, and a TF.js folder that holds the input", async () => {
    const ext = join(dir, 'ext');
    mkdirSync(ext);
    const big = join(ext, 'm.onnx');
    await convert(fixturePath('fashion/convnext_fashion.pth'), big, { imageSize: 32, cropPct: 1, externalData: true });
    refusedUnchanged(['convert', big, '-o', join(ext, 'm.onnx.data')], /would overwrite the input .*m\.onnx\.data \(external data of the input model\)/);
    refusedUnchanged(['convert', big, '-o', ext, '--format', 'tfjs', '--force'], /the output folder is a folder that holds the input .*m\.onnx/);
  });

  it('a new output beside the inputs is written', () => {
    const out = join(dir, 'report.json');
    const r = runCli(...validate('--json', out));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(readFileSync(out, 'utf8')).data.images === 8);
  });
});
