// The house rules a refactor must keep, checked over src/ (run by .ci/run and by a test):
// no file over the line budget, no import circle, and no verb importing another verb (verbs share
// the model core in src/model/, not each other). `node dist/scripts/check-structure.js` prints the
// breaches and exits 1 when there are any.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LINE_BUDGET = 600;

/** The verbs: each owns these files; only cli/ and the library index may import them. */
const VERBS: Record<string, (file: string) => boolean> = {
  convert: (f) => f === 'convert.ts',
  inspect: (f) => f === 'inspect.ts',
  quantize: (f) => f.startsWith('quantize/'),
  validate: (f) => f.startsWith('validate/'),
  serve: (f) => f.startsWith('web/'),
};
const MAY_IMPORT_VERBS = (f: string) => f.startsWith('cli/') || f === 'index.ts';

const verbOf = (file: string) => Object.keys(VERBS).find((v) => VERBS[v](file));

function sourceFiles(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name), root) : e.name.endsWith('.ts') ? [relative(root, join(dir, e.name))] : [],
  );
}

/** Relative imports of a module (static, re-exports and dynamic), as paths under src/. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    out.push(relative('.', join(dirname(file), m[1])).replace(/\.js$/, '.ts'));
  }
  return out;
}

export function structureProblems(srcDir: string): string[] {
  const problems: string[] = [];
  const files = sourceFiles(srcDir);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(join(srcDir, f), 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > LINE_BUDGET) problems.push(`src/${f}: ${lines} lines, over the budget of ${LINE_BUDGET}`);
    const deps = importsOf(f, text).filter((d) => !d.startsWith('..'));
    graph.set(f, deps);
    const own = verbOf(f);
    for (const d of deps) {
      const verb = verbOf(d);
      if (verb && verb !== own && !MAY_IMPORT_VERBS(f)) problems.push(`src/${f} imports src/${d}: the ${verb} verb (share it through src/model/ instead)`);
    }
  }
  // depth-first search for a back edge; each circle reported once, from where it was entered
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') problems.push(`import circle: ${[...stack.slice(stack.indexOf(d)), d].map((x) => `src/${x}`).join(' → ')}`);
      else if (!state.has(d) && graph.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const problems = structureProblems(join(root, 'src'));
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length) process.exitCode = 1;
  else process.stdout.write(`structure: no file over ${LINE_BUDGET} lines, no import circle, no verb imports another\n`);
}
