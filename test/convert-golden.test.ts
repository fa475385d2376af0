// Every checkpoint fixture, converted and run by onnxruntime-node, gives PyTorch's outputs.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { convert } from '../src/convert.js';
import { createSession, runFloat } from '../src/runtime/onnxruntime.js';
import { checkpointFixtures, fixturePath, golden, assertClose } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-golden-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('convert matches PyTorch on every checkpoint fixture', () => {
  for (const m of checkpointFixtures) {
    it(`${m.name} (${m.layout} ${m.format} ${m.version}${m.conv_mlp ? ' conv_mlp' : ''}, ${m.dtype})`, async () => {
      const out = join(dir, `${m.name}.onnx`);
      const r = await convert(fixturePath(m.path), out, { stateDictKey: m.state_dict_key ?? undefined, imageSize: m.image_size });
      assert.equal(r.checkpoint?.layout, m.layout);
      const { input, output } = golden(m);
      const session = await createSession(readFileSync(out));
      const y = await runFloat(session, input);
      assert.deepEqual(y.dims, output.shape);
      assertClose(y.data, output, m.name);
    });
  }
});
