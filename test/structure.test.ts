// The house rules of scripts/check-structure.ts hold for src/, and the check itself can fail.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LINE_BUDGET, structureProblems } from '../scripts/check-structure.js';
import { ROOT } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'convnext-structure-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(dir, 'src-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('structure', () => {
  it('src/ has no file over the line budget, no import circle, no verb importing another verb', () => {
    assert.deepEqual(structureProblems(join(ROOT, 'src')), []);
  });

  it('finds a circle, a verb importing a verb, and a file over budget', () => {
    const root = tree({
      'a.ts': "import { b } from './graph/b.js';\n",
      'graph/b.ts': "export const b = await import('../a.js');\n",
      'quantize/index.ts': "import { convert } from '../convert.js';\n",
      'convert.ts': 'export const convert = 1;\n',
      'cli/convert.ts': "import { convert } from '../convert.js';\n",
      'big.ts': 'x\n'.repeat(LINE_BUDGET + 1),
    });
    const problems = structureProblems(root);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.join('\n'), /import circle: src\/a\.ts → src\/graph\/b\.ts → src\/a\.ts/);
    assert.match(problems.join('\n'), /src\/quantize\/index\.ts imports src\/convert\.ts: the convert verb/);
    assert.match(problems.join('\n'), /src\/big\.ts: 601 lines/);
  });
});
