// Training checkpoints as the upstream scripts write them, made here from the timm fixture's
// tensors (so PyTorch's golden outputs for those weights still hold): timm's train.py (state_dict,
// state_dict_ema, optimizer state), Lightning (state_dict with a model. prefix), DDP (module.). The
// plain weights are taken by default and the summary names the other sets; a checkpoint no rule
// resolves is refused naming its top-level entries and the flag that chooses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildConvNextGraph } from '../src/convnext/build.js';
import { importConvNext } from '../src/convnext/import.js';
import { Warnings } from '../src/errors.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import type { StateDict } from '../src/formats/state-dict.js';
import { float32, toFloat32, type Tensor } from '../src/graph/tensor.js';
import { runGraph } from '../src/runtime/onnxruntime.js';
import { assertClose, fixturePath, golden, manifest } from './helpers/fixtures.js';
import { throwsUser } from './helpers/assert-errors.js';
import { InputError } from '../src/errors.js';

const v1 = manifest.models.find((m) => m.name === 'v1_timm')!;
const weights = (await readSafetensors(fixturePath(v1.path))).tensors;

const prefixed = (prefix: string, sd: ReadonlyMap<string, Tensor>, scale = 1): [string, Tensor][] =>
  [...sd].map(([k, t]) => [`${prefix}${k}`, scale === 1 ? t : float32(t.shape, toFloat32(t).map((v) => v * scale))]);

/** What an optimizer keeps per parameter (Adam's moments), keyed by index as torch saves it. */
const optimizerState = (): [string, Tensor][] =>
  [...weights].flatMap(([, t], i) => [[`optimizer.state.${i}.exp_avg`, t], [`optimizer.state.${i}.exp_avg_sq`, t]] as [string, Tensor][]);

async function assertGolden(sd: StateDict, stateDictKey?: string) {
  const warnings = new Warnings();
  const imported = importConvNext(sd, { source: 'train.pth', stateDictKey, warnings });
  const graph = buildConvNextGraph(imported.model, { imageSize: v1.image_size, metadata: {} });
  const { input, output } = golden(v1);
  assertClose((await runGraph(graph, input)).data, output, 'training checkpoint');
  return { imported, warnings: warnings.items };
}

describe('training checkpoints', () => {
  it("timm's train.py: state_dict by default, state_dict_ema named as the alternative", async () => {
    const sd = new Map([...prefixed('state_dict.', weights), ...prefixed('state_dict_ema.', weights, 0.5), ...optimizerState()]);
    const { imported, warnings } = await assertGolden(sd);
    assert.equal(imported.stateDictKey, 'state_dict');
    assert.deepEqual(warnings, ["took the weights under 'state_dict'; the checkpoint also holds 'state_dict_ema': --state-dict-key state_dict_ema takes those instead"]);
    const ema = importConvNext(sd, { source: 'train.pth', stateDictKey: 'state_dict_ema' });
    assert.equal(ema.stateDictKey, 'state_dict_ema');
  });

  it('Lightning: state_dict holding model.*, with optimizer state beside it', async () => {
    const sd = new Map([...prefixed('state_dict.model.', weights), ...optimizerState()]);
    assert.equal((await assertGolden(sd)).imported.stateDictKey, 'state_dict.model');
  });

  it('DDP: module.* inside model, beside model_ema', async () => {
    const sd = new Map([...prefixed('model.module.', weights), ...prefixed('model_ema.module.', weights, 0.5)]);
    const { imported, warnings } = await assertGolden(sd);
    assert.equal(imported.stateDictKey, 'model.module');
    assert.match(warnings[0], /also holds 'model_ema'/);
  });

  it('no rule applies: refused naming the entries and --state-dict-key', () => {
    const sd = new Map([...prefixed('teacher.', weights), ...prefixed('student.', weights)]);
    throwsUser(() => importConvNext(sd, { source: 'kd.pth' }), InputError, /its top-level entries are teacher, student: --state-dict-key ENTRY takes the weights from one/);
  });
});
