// CLI cases as data: a command, its inputs (each a seed, maybe edited or swapped for something that
// is not a regular file) and its flags, with @role placeholders for the paths the case is given.
// fast-check draws them from the seeds; materialize() lays one out in a folder of its own.

import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { apply, editsFor, type Edit } from './mutate.js';
import { fileKind, isModel, seedFiles, type Seed } from './seeds.js';

export type Command = 'convert' | 'quantize' | 'validate' | 'inspect';
export type Role = 'model' | 'data' | 'labels' | 'calib' | 'ref';
/** Swaps for the file itself. 'unreadable' is chmod 000 with the case run as nobody (root reads anything). */
export type FsChange = 'missing' | 'directory' | 'fifo' | 'devzero' | 'loop' | 'empty' | 'unreadable';
export const FS_CHANGES: readonly FsChange[] = ['missing', 'directory', 'fifo', 'devzero', 'loop', 'empty', 'unreadable'];

export interface Change {
  /** Which of the seed's files (for a folder, 0 is the folder itself under an fs change). */
  readonly file: number;
  readonly edits?: readonly Edit[];
  readonly fs?: FsChange;
}

export interface Input {
  readonly role: Role;
  readonly seed: string;
  readonly change?: Change;
}

export type OutputPlace = 'fresh' | 'input' | 'existing-folder' | 'missing-parent';

export interface CliCase {
  readonly command: Command;
  readonly inputs: readonly Input[];
  /** Arguments after the command; @model, @data, @labels, @calib, @ref, @out and @outdir/NAME stand for paths. */
  readonly args: readonly string[];
  readonly output?: OutputPlace;
}

/** What a materialized case runs on. */
export interface Laid {
  /** The command line after the program: the command, then its arguments. */
  readonly args: string[];
  /** The output path convert/quantize were given, when it is ours (not an input). */
  readonly output?: string;
  readonly outputKind?: 'onnx' | 'tfjs';
  readonly asNobody: boolean;
  /** Every path the case's inputs live under. */
  readonly inputRoot: string;
  readonly outRoot: string;
}

type Flags = fc.Arbitrary<string[]>;
/** A flag whose value is most often the first given (a usual one), else any of them. */
const flag = (name: string, values: readonly string[]): Flags =>
  fc.oneof({ weight: 2, arbitrary: fc.constant(values[0]) }, { weight: 1, arbitrary: fc.constantFrom(...values) }).map((v) => [name, v]);
const bare = (name: string): Flags => fc.constant([name]);
const both = (name: string, value: string): Flags => fc.constant([name, value]);
const CROP = ['1', '0.875', '0', '-1', '1e9', 'NaN', 'abc', '0.0001'];
const MEAN = ['0.5,0.5,0.5', '1,2', 'a,b,c', '0,0,0', '1e309,0,0', '-1,-1,-1', '0.485,0.456,0.406'];
const STD = ['0.5,0.5,0.5', '0,0,0', '1,2', '-1,1,1', '1e-30,1,1', '0.229,0.224,0.225'];
const BAD_SIZES = ['1', '2', '7', '31', '224', '0', '-1', '65', '99999', 'abc', '64.5', '1e3', ''];

/** Any subset of `flags`, each present with probability 1/5, in the order given. */
function someFlags(flags: readonly Flags[]): Flags {
  const maybe = (f: Flags) => fc.oneof({ weight: 4, arbitrary: fc.constant<string[]>([]) }, { weight: 1, arbitrary: f });
  return fc.tuple(...flags.map(maybe)).map((picked) => picked.flat());
}

function imageSize(seed: Seed): Flags {
  return fc.oneof({ weight: 3, arbitrary: fc.constant(String(seed.imageSize ?? 64)) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_SIZES) }).map((v) => ['--image-size', v]);
}

/** A seed left as it is (often), edited, or swapped for a non-file. */
export function changeOf(seed: Seed): fc.Arbitrary<Change | undefined> {
  const files = seedFiles(seed);
  const folder = files.length > 1 || files[0] !== seed.path;
  const edit = fc.integer({ min: 0, max: files.length - 1 }).chain((i) => editsFor(fileKind(files[i])).map((edits): Change => ({ file: i, edits })));
  const fs = fc.record({ file: fc.integer({ min: 0, max: folder ? files.length : 0 }), fs: fc.constantFrom(...FS_CHANGES) });
  return fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 5, arbitrary: edit }, { weight: 1, arbitrary: fs });
}

function input(role: Role, seeds: readonly Seed[]): fc.Arbitrary<Input> {
  return fc.constantFrom(...seeds).chain((s) => changeOf(s).map((change) => ({ role, seed: s.name, change })));
}

/** Draws CLI cases over the given seeds. */
export function cliCase(seeds: readonly Seed[]): fc.Arbitrary<CliCase> {
  const models = seeds.filter(isModel);
  const of = (...kinds: string[]) => seeds.filter((s) => kinds.includes(s.kind));
  const outputPlace = fc.constantFrom<OutputPlace>('fresh', 'fresh', 'fresh', 'fresh', 'fresh', 'fresh', 'input', 'existing-folder', 'missing-parent');
  const prep = [flag('--crop-pct', CROP), flag('--mean', MEAN), flag('--std', STD)];

  const convert = fc.constantFrom(...models.filter((m) => m.kind !== 'tfjs')).chain((m) => fc.record({
    command: fc.constant('convert' as const),
    model: changeOf(m).map((change): Input => ({ role: 'model', seed: m.name, change })),
    labels: input('labels', of('classes', 'labels')),
    output: outputPlace,
    flags: someFlags([
      imageSize(m), flag('--state-dict-key', ['model', 'model_ema', 'state_dict', 'nope', '', 'module']),
      flag('--format', ['tfjs', 'tfjs', 'onnx', 'bogus']), flag('--weights', ['float32', 'float16', 'uint16', 'uint8', 'int8', 'int4']),
      flag('--gelu', ['erf', 'tanh', 'x']), flag('--shard-size', ['65536', '1', '100', '0', '-4', '4096', 'x', '1e20']),
      ...prep, both('--labels', '@labels'),
      flag('--passes', ['fold-constants', 'nonexistent', '', 'fold-constants,remove-dead', 'compact-names', 'tfjs-fuse-gelu']),
      flag('--skip-pass', ['fuse-layernorm', 'nope', 'remove-dead']), bare('--compact-names'), bare('--external-data'), bare('--json'), bare('-q'), bare('--force'),
      flag('--outputs', ['stages', 'pooled', 'logits', 'bogus']), bare('--dynamic-size'),
    ]),
  })).map(({ command, model, labels, output, flags }): CliCase => ({
    command, output, inputs: flags.includes('@labels') ? [model, labels] : [model], args: ['@model', '-o', '@out', ...flags],
  }));

  const quantize = fc.constantFrom(...models.filter((m) => m.kind !== 'tfjs')).chain((m) => fc.record({
    command: fc.constant('quantize' as const),
    model: changeOf(m).map((change): Input => ({ role: 'model', seed: m.name, change })),
    to: fc.constantFrom('fp16', 'int8-weights', 'int8', 'int8', 'int8', 'int4'),
    calib: input('calib', of('images', 'npy')),
    data: input('data', of('images')),
    labels: input('labels', of('labels')),
    output: outputPlace,
    flags: someFlags([
      imageSize(m), flag('--calib-size', ['4', '1', '0', '-1', 'x', '100000']), flag('--method', ['minmax', 'percentile', 'entropy', 'x']),
      flag('--percentile', ['99.99', '100', '0', '-1', '101', 'NaN']), flag('--op-types', ['Conv', 'MatMul,Gemm', 'Nope', '']),
      flag('--exclude', ['stem*', '*', '[', 'nonexistent']), bare('--quantize-input-layer'), flag('--equalize', ['auto', 'on', 'off', 'x']),
      bare('--no-reduce-range'), bare('--no-keep-io-types'), flag('--fp32-ops', ['LayerNormalization', '', 'Conv', 'Nope']),
      both('--data', '@data'), both('--labels', '@labels'), flag('--max-drop', ['100', '1', '0', '-1', 'NaN']),
      flag('--min-agreement', ['0', '50', '101', '-5']), flag('--batch-size', ['4', '1', '0', '100000', 'x']),
      flag('--state-dict-key', ['model', 'nope']), flag('--format', ['tfjs', 'onnx']), bare('--keep-names'), bare('--json'), bare('-q'), ...prep,
    ]),
  })).map(({ command, model, to, calib, data, labels, output, flags }): CliCase => {
    const withCalib = to === 'int8';
    const inputs = [model, ...(withCalib ? [calib] : []), ...(flags.includes('@data') ? [data] : []), ...(flags.includes('@labels') ? [labels] : [])];
    return { command, output, inputs, args: ['@model', '-o', '@out', '--to', to, ...(withCalib ? ['--calib', '@calib'] : []), ...flags] };
  });

  const validatable = models.filter((m) => m.kind === 'onnx' || m.kind === 'tfjs');
  const validate = fc.constantFrom(...validatable, ...validatable, ...models).chain((m) => fc.record({
    command: fc.constant('validate' as const),
    model: changeOf(m).map((change): Input => ({ role: 'model', seed: m.name, change })),
    ref: input('ref', of('onnx')),
    data: input('data', of('images', 'npy')),
    labels: input('labels', of('labels')),
    ep: fc.constantFrom('cpu', 'cpu', 'cpu', 'cpu', 'cpu', 'cpu', 'cpu', 'cpu', 'cpu', 'auto'),
    batch: fc.constantFrom('none', 'none', 'none', 'none', '1', '1', '2', '0', '-1', '1,2', 'abc', '', '256'),
    flags: someFlags([
      both('--reference', '@ref'), both('--data', '@data'), both('--labels', '@labels'),
      flag('--limit', ['4', '1', '0', '-1', 'x', '1000000']), flag('--tfjs-backend', ['cpu', 'wasm', 'webgl']),
      flag('--max-drop', ['100', '1', '0', '-1', 'NaN']), flag('--min-agreement', ['0', '50', '101', '-5']), flag('--min-cosine', ['-1', '0.9', '2', 'NaN']),
      flag('--max-latency-ms', ['100000', '1000', '0', '-1', '1e-9']), flag('--min-speedup', ['0.01', '1e9', '0']), imageSize(m),
      fc.constantFrom<string[]>(['--json'], ['--json', '@outdir/report.json']), flag('--junit', ['@outdir/r.xml']), flag('--html', ['@outdir/r.html']),
      flag('--reference-ep', ['cpu']), bare('-q'), ...prep,
    ]),
  })).map(({ command, model, ref, data, labels, ep, batch, flags }): CliCase => {
    const inputs = [model, ...(flags.includes('@ref') ? [ref] : []), ...(flags.includes('@data') ? [data] : []), ...(flags.includes('@labels') ? [labels] : [])];
    return { command, inputs, args: ['@model', '--ep', ep, '--batch', batch, ...flags] };
  });

  const inspect = fc.constantFrom(...models).chain((m) => fc.record({
    model: changeOf(m).map((change): Input => ({ role: 'model', seed: m.name, change })),
    flags: someFlags([bare('--json'), bare('-q'), bare('--passes')]),
  })).map(({ model, flags }): CliCase => ({ command: 'inspect', inputs: [model], args: ['@model', ...flags] }));

  return fc.oneof({ weight: 3, arbitrary: convert }, { weight: 2, arbitrary: quantize }, { weight: 3, arbitrary: validate }, { weight: 1, arbitrary: inspect });
}

/** Lays the case out under `dir` (in/ for inputs, out/ for outputs) and resolves its placeholders. */
export function materialize(c: CliCase, seeds: ReadonlyMap<string, Seed>, dir: string): Laid {
  const inputRoot = join(dir, 'in');
  const outRoot = join(dir, 'out');
  mkdirSync(outRoot, { recursive: true });
  const paths: Partial<Record<Role, string>> = {};
  let asNobody = false;
  for (const i of c.inputs) {
    const seed = seeds.get(i.seed)!;
    const at = join(inputRoot, i.role, basename(seed.path));
    mkdirSync(join(inputRoot, i.role), { recursive: true });
    cpSync(seed.path, at, { recursive: true });
    paths[i.role] = at;
    if (i.change) asNobody ||= applyChange(at, i.change);
  }
  const tfjsOut = c.args.some((a, k) => a === '--format' && c.args[k + 1] === 'tfjs');
  const fresh = join(outRoot, tfjsOut ? 'model-tfjs' : 'model.onnx');
  let output: string | undefined = fresh;
  if (c.output === 'input') output = undefined;
  if (c.output === 'existing-folder') {
    mkdirSync(join(outRoot, 'taken'));
    writeFileSync(join(outRoot, 'taken', 'notes.txt'), 'not a model\n');
    output = join(outRoot, 'taken');
  }
  if (c.output === 'missing-parent') output = join(outRoot, 'no', 'such', 'model.onnx');
  const args = [c.command, ...c.args].map((a) => {
    if (a === '@out') return output ?? paths.model!;
    if (a.startsWith('@outdir/')) return join(outRoot, a.slice('@outdir/'.length));
    if (a.startsWith('@')) return paths[a.slice(1) as Role] ?? a;
    return a;
  });
  if (asNobody) for (const p of [dir, inputRoot, outRoot]) chmodSync(p, 0o777);
  return { args, output, outputKind: tfjsOut ? 'tfjs' : 'onnx', asNobody, inputRoot, outRoot };
}

/** Applies a change at `at` (a seed's copy); true when the case must run as nobody. */
export function applyChange(at: string, ch: Change): boolean {
  const files = seedFiles({ name: '', kind: 'pth', path: at });
  const folder = files.length > 1 || files[0] !== at;
  if (ch.edits) {
    const file = files[ch.file % files.length];
    writeFileSync(file, apply(readFileSync(file), fileKind(file), ch.edits));
    return false;
  }
  const target = folder && ch.file > 0 ? files[(ch.file - 1) % files.length] : at;
  switch (ch.fs!) {
    case 'missing':
      rmSync(target, { recursive: true, force: true });
      return false;
    case 'directory':
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target);
      return false;
    case 'fifo':
      rmSync(target, { recursive: true, force: true });
      execFileSync('mkfifo', [target]);
      return false;
    case 'devzero':
      rmSync(target, { recursive: true, force: true });
      symlinkSync('/dev/zero', target);
      return false;
    case 'loop':
      rmSync(target, { recursive: true, force: true });
      symlinkSync(basename(target), target);
      return false;
    case 'empty':
      rmSync(target, { recursive: true, force: true });
      writeFileSync(target, '');
      return false;
    case 'unreadable':
      chmodSync(target, 0o000);
      return true;
  }
}
