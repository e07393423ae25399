// Seeds for the randomised suites. `npm test` runs fixed seeds, so a green run means the same
// inputs pass every time; `npm run soak` (SOAK=1) draws fresh ones to look further. Either way a
// suite prints its seed with the variable that replays it: NAME=<seed> npx vitest run <file>.

/** The seed named by `name` in the environment (a replay), else a random one under SOAK=1, else `fixed`. */
export function seedFrom(name: string, fixed: number): number {
  return seedsFrom(name, [fixed])[0]!;
}

/** As seedFrom, for suites that run several seeds: `name` holds a comma-separated list. */
export function seedsFrom(name: string, fixed: readonly number[]): number[] {
  const given = process.env[name];
  if (given !== undefined && given.trim() !== '') {
    const seeds = given.split(',').map((s) => Number(s.trim()));
    if (seeds.some((s) => !Number.isSafeInteger(s))) throw new Error(`${name} must be whole numbers separated by commas, got ${JSON.stringify(given)}`);
    return seeds;
  }
  if (process.env.SOAK === '1') return fixed.map(() => Math.floor(Math.random() * 2 ** 31));
  return [...fixed];
}
