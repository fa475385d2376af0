// The page's server serves nothing but what it was given, to this machine only.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { startServer } from '../src/runtime/browser/server.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-server-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('listens on 127.0.0.1, GET only, the listed files of a mounted folder only, nothing outside it', async () => {
  const folder = join(dir, 'model');
  mkdirSync(folder);
  writeFileSync(join(folder, 'model.onnx'), 'model');
  writeFileSync(join(folder, 'model.onnx.data'), 'weights');
  writeFileSync(join(folder, 'secret.txt'), 'not the model');
  writeFileSync(join(dir, 'outside.txt'), 'outside');
  symlinkSync(join(dir, 'outside.txt'), join(folder, 'link.txt'));
  const server = await startServer('<p>page</p>');
  try {
    assert.match(server.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    const base = server.mount('m', folder, ['model.onnx', 'model.onnx.data', 'link.txt']);
    const open = server.mount('all', folder);
    const get = async (path: string, method = 'GET') => {
      const r = await fetch(`${server.origin}${path}`, { method });
      return { status: r.status, text: await r.text(), isolated: r.headers.get('cross-origin-embedder-policy') };
    };
    assert.deepEqual(await get('/'), { status: 200, text: '<p>page</p>', isolated: 'require-corp' });
    assert.equal((await get(`${base}model.onnx`)).text, 'model');
    assert.equal((await get(`${base}model.onnx.data`)).text, 'weights');
    assert.equal((await get(`${base}secret.txt`)).status, 404, 'a file beside the model that it does not name');
    assert.equal((await get(`${base}link.txt`)).status, 404, 'a listed symlink that leaves the folder');
    assert.equal((await get(`${open}secret.txt`)).status, 200);
    assert.equal((await get(`${open}..%2Foutside.txt`)).status, 404);
    assert.equal((await get(`${open}%2E%2E/outside.txt`)).status, 404);
    assert.equal((await get('/nomount/model.onnx')).status, 404);
    assert.equal((await get(`${base}model.onnx`, 'POST')).status, 405);
  } finally {
    await server.close();
  }
});
