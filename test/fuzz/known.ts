// Bad outcomes the fuzzer finds in code this suite does not own, reported to its owners and not yet
// fixed. A failure matching one is still counted and shown (as known), but does not fail npm test;
// delete an entry once its fix lands, and the fixed-seed campaign holds the line from then on.
// Matched on the child's stderr, where CONVNEXT_DEBUG puts the stack: the frame names the file.

import type { Outcome } from './outcome.js';

export interface KnownIssue {
  readonly id: string;
  /** The file the fix belongs in. */
  readonly owner: string;
  readonly outcomes: readonly Outcome[];
  readonly stderr: RegExp;
}

export const KNOWN: readonly KnownIssue[] = [];

export function knownIssue(outcome: Outcome, stderr: string): KnownIssue | undefined {
  return KNOWN.find((k) => k.outcomes.includes(outcome) && k.stderr.test(stderr));
}
