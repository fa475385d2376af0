// One conversion in a fresh process, so that peak RSS belongs to it alone. Prints JSON.
import { convert } from '../src/convert.js';

const [input, output] = process.argv.slice(2);
const start = performance.now();
const result = await convert(input, output);
const wallMs = performance.now() - start;
process.stdout.write(JSON.stringify({ wallMs, timings: result.timings, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
