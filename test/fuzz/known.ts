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

export const KNOWN: readonly KnownIssue[] = [
  {
    // checkOutputs/filesRead stat and sniff every input with bare statSync/openSync before any reader
    // runs: a symbolic-link loop (ELOOP) or an unreadable input (EACCES) escapes as an errno error
    id: 'files-errno',
    owner: 'src/formats/files.ts',
    outcomes: ['internal'],
    stderr: /\b(ELOOP|EACCES)\b[\s\S]*\n\s+at \S+ \(file:\S+\/src\/formats\/files\.js/,
  },
  {
    // openDataset treats anything that is not a regular file as a folder: a .npy name that is a
    // FIFO or a device reaches readdirSync (ENOTDIR)
    id: 'dataset-device',
    owner: 'src/data/images.ts',
    outcomes: ['internal'],
    stderr: /\bENOTDIR\b[\s\S]*\n\s+at \S+ \(file:\S+\/src\/data\/images\.js/,
  },
];

export function knownIssue(outcome: Outcome, stderr: string): KnownIssue | undefined {
  return KNOWN.find((k) => k.outcomes.includes(outcome) && k.stderr.test(stderr));
}
