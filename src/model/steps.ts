// A verb's work as named, timed steps; the caller hears of each as it starts (for spinners).

/** Times named steps and tells the caller as each starts. */
export class Steps {
  readonly timings: Record<string, number> = {};
  constructor(private readonly onStep?: (step: string) => void) {}
  async run<T>(name: string, work: () => T | Promise<T>): Promise<T> {
    this.onStep?.(name);
    const start = performance.now();
    const result = await work();
    this.timings[name] = (this.timings[name] ?? 0) + performance.now() - start;
    return result;
  }
}
