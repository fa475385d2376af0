// What a measurement ran on, in words a report can carry.
import { cpus } from 'node:os';

export function cpuName(): string {
  const c = cpus();
  return `${c[0]?.model?.trim() || 'unknown CPU'} (${c.length} cores)`;
}
