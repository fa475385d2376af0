// Layer names by pattern, as --exclude takes them: `*` stands for any run of characters.

/** A matcher for names against `patterns`; a name matches when any pattern matches all of it. */
export function globMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (name) => res.some((r) => r.test(name));
}
