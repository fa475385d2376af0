// Loaded with --import into each CLI child the fuzzer runs: at exit, the child writes its peak
// resident memory (getrusage's maxRSS, which a parent cannot read for a child in Node) and how long
// it ran to the file FUZZ_RSS_FILE names. The child's own clock, because the parent's can be late:
// it loads other cases' outputs in process, and onnxruntime builds a session on the main thread.
import { writeFileSync } from 'node:fs';

const file = process.env.FUZZ_RSS_FILE;
if (file) {
  process.on('exit', () => {
    try {
      writeFileSync(file, JSON.stringify({ rssBytes: process.resourceUsage().maxRSS * 1024, ms: performance.now() }));
    } catch {
      // the report is best effort: a child that cannot write it is judged on the rest
    }
  });
}
