import assert from 'node:assert/strict';
import type { InputError, UnsupportedError } from '../../src/errors.js';

/** Asserts that `fn` throws a user error of `kind` whose message equals or matches `message`. */
export function throwsUser(fn: () => unknown, kind: typeof InputError | typeof UnsupportedError, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${(e as Error)?.stack ?? String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}
