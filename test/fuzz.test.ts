// The fuzz suite's fixed-seed share of npm test: every reader in process against edited copies of
// its seeds (fast-check shrinks a failure to its smallest edit), then a short CLI campaign of every
// command as child processes, judged as test/fuzz/outcome.ts says. npm run fuzz runs the long one.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { renderReport, runCampaign } from './fuzz/campaign.js';
import { knownIssue } from './fuzz/known.js';
import { READERS, readerCase, runReaderCase } from './fuzz/readers.js';
import { prepareSeeds, type Seed } from './fuzz/seeds.js';

const SEED = 20240611;
const READER_RUNS = 40;
const CLI_CASES = 100;

const work = mkdtempSync(join(tmpdir(), 'convnext-fuzz-test-'));
process.env.FUZZ_TMP = work;
let seeds: Seed[] = [];
after(() => rmSync(work, { recursive: true, force: true }));
before(async () => {
  seeds = await prepareSeeds(join(work, 'seeds'));
});

describe('fuzz: readers refuse edited input with user errors only', () => {
  for (const target of READERS) {
    it(target.name, async () => {
      const bySeed = new Map(seeds.map((s) => [s.name, s]));
      await fc.assert(
        fc.asyncProperty(readerCase(target, seeds), async (c) => {
          const r = await runReaderCase(c, bySeed);
          if (r.outcome === 'internal' && !knownIssue('internal', r.error ?? '')) assert.fail(`internal error on ${JSON.stringify(c)}:\n${r.error}`);
        }),
        { seed: SEED, numRuns: READER_RUNS, endOnFailure: true },
      );
    });
  }
});

describe('fuzz: the CLI', () => {
  it(`${CLI_CASES} cases: every one a one-line refusal, a success with a loadable output, or a failed gate`, async (t) => {
    const report = await runCampaign(seeds, {
      cases: CLI_CASES,
      seed: SEED,
      concurrency: 2,
      limits: { timeoutMs: 30_000, heapMiB: 2048, rssBytes: 3 * 2 ** 30 },
      workDir: join(work, 'cli'),
    });
    t.diagnostic(renderReport(report));
    const unknown = report.failures.filter((f) => !f.known);
    assert.deepEqual(unknown.map((f) => `${f.outcome}: ${f.detail}\n  ${f.command}`), []);
  });
});
