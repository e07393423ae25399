// The one-way layering the README promises, checked on the sources themselves: machines import
// nothing from src; the Market client knows no store or engine; the store knows no engine or
// Market; only the store adapters import a database driver or hold SQL.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ADAPTERS = /^src\/store\/(sqlite|postgres)\//;
const DRIVERS = ['better-sqlite3', 'pg', 'postgres'];
// Statements, not words: "UPDATE the order" in a comment is prose; "UPDATE outbox SET" is SQL.
const SQL = /\b(SELECT\s+[a-z_*(]|INSERT\s+INTO|UPDATE\s+[a-z_]+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|PRAGMA\s+[a-z_]+|sqlite_master)\b/;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sources(rel));
    else if (rel.endsWith('.ts')) out.push(rel);
  }
  return out;
}

/** Every module a file imports or re-exports, resolved to a repo-relative path (packages as named). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/g)].map((m) => m[1]!);
  specs.push(...[...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!));
  return specs.map((s) => (s.startsWith('.') ? path.posix.normalize(path.posix.join(path.posix.dirname(file), s)) : s));
}

const ALL = [...sources('machines'), ...sources('src')];

function offenders(files: readonly string[], bad: (imported: string) => boolean): string[] {
  return files.flatMap((f) => importsOf(f).filter(bad).map((i) => `${f} → ${i}`));
}

describe('layering', () => {
  it('finds the sources it checks (a moved folder would make every check below vacuous)', () => {
    expect(ALL.filter((f) => f.startsWith('machines/')).length).toBeGreaterThan(5);
    expect(ALL.filter((f) => f.startsWith('src/store/sqlite/')).length).toBeGreaterThan(5);
    expect(ALL.filter((f) => f.startsWith('src/engine/')).length).toBeGreaterThan(5);
    expect(importsOf('src/engine/engine.ts')).toContain('src/store/port.js');
  });

  it('machines import nothing from src (they stay pure: no I/O, no store, no engine)', () => {
    expect(offenders(ALL.filter((f) => f.startsWith('machines/')), (i) => i.startsWith('src/'))).toEqual([]);
  });

  it('the Market client knows no store and no engine', () => {
    expect(offenders(ALL.filter((f) => f.startsWith('src/market/')), (i) => /^src\/(store|engine|cli|testing)\//.test(i))).toEqual([]);
  });

  it('the store knows no engine and no Market', () => {
    expect(offenders(ALL.filter((f) => f.startsWith('src/store/')), (i) => /^src\/(engine|market|cli|testing)\//.test(i))).toEqual([]);
  });

  it('only the store adapters import a database driver', () => {
    expect(offenders(ALL.filter((f) => !ADAPTERS.test(f)), (i) => DRIVERS.includes(i))).toEqual([]);
  });

  it('no SQL outside the store adapters', () => {
    const withSql = ALL.filter((f) => !ADAPTERS.test(f) && SQL.test(fs.readFileSync(path.join(ROOT, f), 'utf8')));
    expect(withSql).toEqual([]);
    // The pattern itself finds SQL where there is some.
    expect(SQL.test(fs.readFileSync(path.join(ROOT, 'src/store/sqlite/outbox-table.ts'), 'utf8'))).toBe(true);
  });
});
