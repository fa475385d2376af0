// Loaded with --import into each CLI child the fuzzer runs: at exit, the child writes its peak
// resident memory (getrusage's maxRSS, which a parent cannot read for a child in Node) to the file
// FUZZ_RSS_FILE names.
import { writeFileSync } from 'node:fs';

const file = process.env.FUZZ_RSS_FILE;
if (file) {
  process.on('exit', () => {
    try {
      writeFileSync(file, String(process.resourceUsage().maxRSS * 1024));
    } catch {
      // the report is best effort: a child that cannot write it is judged on the rest
    }
  });
}
