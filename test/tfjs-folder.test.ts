// A TF.js model folder as hostile input to validate: each broken folder is made at test time from
// one written by convert, then run through the CLI, which must refuse it in one line (exit 2, no
// stack trace) within 2 s, without reading anything outside the folder.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { InputError } from '../src/errors.js';
import { readTfjsFolder } from '../src/formats/tfjs-folder.js';
import { assertCliRefused, HANG_MS, runCli, runCliMeasured } from './helpers/cli.js';
import { fixturePath, manifest } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-tfjs-folder-'));
const good = join(dir, 'good');
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  const m = manifest.models.find((x) => x.name === 'v1_timm')!;
  await convert(fixturePath(m.path), good, { format: 'tfjs', imageSize: m.image_size });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ModelJson = any;
const SHARD = 'group1-shard1of1.bin';
let count = 0;

/**
 * A copy of the good folder, changed by `edit`: given the folder and its parsed model.json, which is
 * written back unless `raw` (for edits that replace model.json itself).
 */
function broken(edit: (folder: string, json: ModelJson) => void, raw = false): string {
  const folder = join(dir, `case${++count}`);
  cpSync(good, folder, { recursive: true });
  const json = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8'));
  edit(folder, json);
  if (!raw) writeFileSync(join(folder, 'model.json'), JSON.stringify(json));
  return folder;
}

/** validate refuses the folder: exit 2, one line matching `pattern`, under 2 s. */
function refused(folder: string, pattern: RegExp): void {
  const r = runCliMeasured('validate', folder, '--batch', '1');
  assertCliRefused(r, pattern, folder);
  assert.ok(r.cpuMs < 2000 && r.ms < HANG_MS, `refused in ${r.cpuMs.toFixed(0)} ms of CPU (limit 2000), ${r.ms.toFixed(0)} ms of wall time`);
}

const firstWeight = (j: ModelJson) => j.weightsManifest[0].weights[0];

describe('validate refuses a broken TF.js folder in one line', () => {
  it('the unbroken folder validates', () => {
    const r = runCli('validate', good, '--batch', '1');
    assert.equal(r.code, 0, r.stderr);
  });

  describe('model.json itself', () => {
    const cases: [string, (folder: string, j: ModelJson) => void, RegExp][] = [
      ['not JSON', (f) => writeFileSync(join(f, 'model.json'), '{"format": "graph-model",'), /model\.json: is not valid JSON/],
      ['a JSON array', (f) => writeFileSync(join(f, 'model.json'), '[1, 2]'), /model\.json: is not a JSON object/],
      ['over 64 MiB', (f) => truncateSync(join(f, 'model.json'), (64 << 20) + 1), /model\.json: is \d+ bytes, over the 67108864-byte limit/],
      ['a directory', (f) => { unlinkSync(join(f, 'model.json')); mkdirSync(join(f, 'model.json')); }, /model\.json: is a directory/],
      ['a FIFO', (f) => { unlinkSync(join(f, 'model.json')); execFileSync('mkfifo', [join(f, 'model.json')]); }, /model\.json: is not a regular file \(a FIFO\)/],
      ['a symbolic link to /dev/zero', (f) => { unlinkSync(join(f, 'model.json')); symlinkSync('/dev/zero', join(f, 'model.json')); }, /model\.json: is not a regular file \(a character device\)/],
    ];
    for (const [what, edit, pattern] of cases) {
      it(what, () => refused(broken(edit, true), pattern));
    }
  });

  describe('fields', () => {
    const cases: [string, (j: ModelJson) => void, RegExp][] = [
      ['no format', (j) => delete j.format, /format is missing/],
      ['a format that is not a string', (j) => (j.format = 7), /format must be a string \(got 7\)/],
      ['a layers model', (j) => (j.format = 'layers-model'), /format is "layers-model": only TF\.js graph models/],
      ['no modelTopology', (j) => delete j.modelTopology, /modelTopology is missing/],
      ['modelTopology.node not an array', (j) => (j.modelTopology.node = {}), /modelTopology\.node must be an array of nodes/],
      ['no modelTopology.versions', (j) => delete j.modelTopology.versions, /modelTopology\.versions is missing/],
      ['a node without a name', (j) => delete j.modelTopology.node[3].name, /modelTopology\.node\[3\]\.name must be a node name/],
      ['a node with a numeric op', (j) => (j.modelTopology.node[3].op = 5), /modelTopology\.node\[3\]\.op must be an op name/],
      ['two nodes of one name', (j) => (j.modelTopology.node[3].name = j.modelTopology.node[2].name), /node\[3\]\.name repeats an earlier node/],
      ['an input naming no node', (j) => j.modelTopology.node.at(-1).input.push('nowhere:0'), /has input "nowhere:0", which names no node/],
      ['an attribute that is not an AttrValue', (j) => (j.modelTopology.node.find((n: ModelJson) => n.attr?.strides).attr.strides = { list: 5 }), /attr\.strides must be an AttrValue object/],
      ['library functions', (j) => (j.modelTopology.library = { function: [{}] }), /library holds functions/],
      ['a signature size that is not a number', (j) => (Object.values(j.signature.inputs)[0] as ModelJson).tensorShape.dim[1] = { size: 'big' }, /signature\.inputs\.\S+\.tensorShape\.dim\[1\] must be \{"size": n\}/],
      ['no weightsManifest', (j) => delete j.weightsManifest, /weightsManifest is missing/],
      ['a weightsManifest that is not an array', (j) => (j.weightsManifest = { paths: [SHARD] }), /weightsManifest must be an array of weight groups/],
      ['group paths that are not strings', (j) => (j.weightsManifest[0].paths = [1]), /weightsManifest\[0\]\.paths must be an array of file names/],
      ['group weights that are not an array', (j) => (j.weightsManifest[0].weights = 'all'), /weightsManifest\[0\]\.weights must be an array of weight specs/],
      ['a weight without a name', (j) => delete firstWeight(j).name, /weights\[0\]\.name must be a weight name/],
      ['a negative size', (j) => (firstWeight(j).shape[0] = -4), /weights\[0\] \(stem\.conv\.weight\)\.shape must be an array of whole numbers/],
      ['a fractional size', (j) => (firstWeight(j).shape[0] = 1.5), /\.shape must be an array of whole numbers/],
      ['a shape too large to count', (j) => (firstWeight(j).shape = [2 ** 40, 2 ** 40]), /more bytes than can be counted/],
      ['an unknown dtype', (j) => (firstWeight(j).dtype = 'float64'), /\.dtype is not a TF\.js dtype \(float32, int32, bool\) \(got "float64"\)/],
      ['a string weight', (j) => (firstWeight(j).dtype = 'string'), /dtype string is not supported/],
      ['an unknown quantization', (j) => (firstWeight(j).quantization = { dtype: 'int8', scale: 1, min: 0 }), /quantization\.dtype is not one TF\.js dequantizes \(uint8, uint16, float16\)/],
      ['uint8 quantization without a scale', (j) => (firstWeight(j).quantization = { dtype: 'uint8', min: 0 }), /quantization\.scale must be a finite number/],
      ['float16 quantization of a bool', (j) => { firstWeight(j).dtype = 'bool'; firstWeight(j).quantization = { dtype: 'float16' }; }, /cannot be bool stored as float16/],
      ['weights needing more bytes than the shards hold', (j) => firstWeight(j).shape[0]++, /weightsManifest\[0\]: its weights need \d+ bytes but its shards hold \d+/],
      ['weights needing fewer bytes than the shards hold', (j) => j.weightsManifest[0].weights.pop(), /its weights need \d+ bytes but its shards hold \d+/],
    ];
    for (const [what, edit, pattern] of cases) it(what, () => refused(broken((_, j) => edit(j)), pattern));
  });

  describe('shard paths stay in the folder', () => {
    const cases: [string, (folder: string, j: ModelJson) => void, RegExp][] = [
      ['../../../etc/passwd', (_, j) => (j.weightsManifest[0].paths = ['../../../etc/passwd']), /weight shard "\.\.\/\.\.\/\.\.\/etc\/passwd": a shard path must name a file inside the model's folder/],
      ['an absolute path', (_, j) => (j.weightsManifest[0].paths = ['/etc/passwd']), /weight shard "\/etc\/passwd": a shard path must name a file inside/],
      ['a .. in the middle', (_, j) => (j.weightsManifest[0].paths = [`sub/../${SHARD}`]), /a shard path must name a file inside/],
      ['an empty path', (_, j) => (j.weightsManifest[0].paths = ['']), /weight shard "": a shard path must name a file inside/],
      ['a symbolic link out of the folder', (f, j) => { symlinkSync('/etc/passwd', join(f, 'out.bin')); j.weightsManifest[0].paths = ['out.bin']; }, /weight shard "out\.bin" leaves the model's folder through a symbolic link/],
      ['a symbolic link to /dev/zero', (f, j) => { symlinkSync('/dev/zero', join(f, 'zero.bin')); j.weightsManifest[0].paths = ['zero.bin']; }, /weight shard "zero\.bin" leaves the model's folder/],
      ['a missing shard', (f) => unlinkSync(join(f, SHARD)), /weight shard "group1-shard1of1\.bin" is missing/],
      ['a shard that is a FIFO', (f) => { unlinkSync(join(f, SHARD)); execFileSync('mkfifo', [join(f, SHARD)]); }, /weight shard "group1-shard1of1\.bin" is not a regular file/],
      ['a shard that is a folder', (f) => { unlinkSync(join(f, SHARD)); mkdirSync(join(f, SHARD)); }, /weight shard "group1-shard1of1\.bin" is not a regular file/],
    ];
    for (const [what, edit, pattern] of cases) it(what, () => refused(broken(edit), pattern));
  });

  // in-process: through the CLI, validate's check of its report paths against the inputs stats every
  // file in the folder first and stumbles on the loop itself (formats/files.ts, exit 3)
  it('a symbolic link loop as a shard', async () => {
    const folder = broken((f) => {
      unlinkSync(join(f, SHARD));
      symlinkSync(SHARD, join(f, SHARD));
    });
    await assert.rejects(readTfjsFolder(folder), (e: unknown) => e instanceof InputError && /group1-shard1of1\.bin: too many levels of symbolic links/.test(e.message));
  });

  describe('what only TF.js can tell', () => {
    it('an op TF.js does not have is named', () => {
      const folder = broken((_, j) => (j.modelTopology.node.find((n: ModelJson) => n.op === 'Erf').op = 'NoSuchOp'));
      refused(folder, /model\.json: the model uses the op "NoSuchOp", which TF\.js does not have/);
    });

    it('a weight whose shape does not fit its op', () => {
      const folder = broken((_, j) => {
        const w = firstWeight(j);
        w.shape = [w.shape[3], w.shape[2], w.shape[1], w.shape[0]];
      });
      refused(folder, /model\.json: TF\.js cannot run this model: /);
    });
  });
});
