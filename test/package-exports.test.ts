import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist') + path.sep;
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | { types: string }> };
const ENTRY_DECLARATIONS = Object.values(pkg.exports).flatMap((e) => (typeof e === 'object' ? [path.join(ROOT, e.types)] : []));

// test/consumer/src/main.ts, compiled here as if it sat at the package root, so that `ym-orders`
// resolves to this package's dist/ by self-reference (check:package compiles it against the
// tarball); its @ts-expect-error lines are the promises of the types.
const CONSUMER = path.join(ROOT, '__consumer__.ts');
const CONSUMER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: false,
  // TypeScript's own lib files are not the package's: checking lib.dom.d.ts would triple the time.
  skipDefaultLibCheck: true,
  types: ['node'],
  noEmit: true,
};

let program: ts.Program | undefined;
/** One strict program over the published declarations and the consumer program. */
function strictProgram(): ts.Program {
  if (program) return program;
  const host = ts.createCompilerHost(CONSUMER_OPTIONS);
  const consumerText = readFileSync(path.join(ROOT, 'test', 'consumer', 'src', 'main.ts'), 'utf8');
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) =>
    path.resolve(name) === CONSUMER ? ts.createSourceFile(name, consumerText, language) : getSourceFile.call(host, name, language, ...rest);
  host.fileExists = (name) => path.resolve(name) === CONSUMER || fileExists.call(host, name);
  host.readFile = (name) => (path.resolve(name) === CONSUMER ? consumerText : readFile.call(host, name));
  program = ts.createProgram({ rootNames: [...ENTRY_DECLARATIONS, CONSUMER], options: CONSUMER_OPTIONS, host });
  return program;
}

function describeDiagnostic(d: ts.Diagnostic): string {
  const where = d.file && d.start !== undefined ? `${path.relative(ROOT, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
  return `${where} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
}

const isOurs = (d: ts.Declaration) => d.getSourceFile().fileName.startsWith(DIST.split(path.sep).join('/')) || d.getSourceFile().fileName.startsWith(DIST);

/** A declaration a user could name: an interface, type, class, enum, function or const at a file's top level. */
function isTopLevel(d: ts.Declaration): boolean {
  if (ts.isVariableDeclaration(d)) return ts.isSourceFile(d.parent.parent.parent);
  return (ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d) || ts.isClassDeclaration(d) || ts.isEnumDeclaration(d) || ts.isFunctionDeclaration(d)) && ts.isSourceFile(d.parent);
}

/**
 * Our declarations that a public one names (transitively) but no entry point exports: a user
 * meets them in a signature and cannot write their names. `typeof x` of an unexported value is
 * followed but not reported (a user names the type built on it).
 */
function unexportedButReferenced(p: ts.Program): string[] {
  const checker = p.getTypeChecker();
  const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exported = new Set<ts.Symbol>();
  for (const entry of ENTRY_DECLARATIONS) {
    const moduleSymbol = checker.getSymbolAtLocation(p.getSourceFile(entry)!)!;
    for (const s of checker.getExportsOfModule(moduleSymbol)) exported.add(resolve(s));
  }
  const missing = new Map<string, string>();
  const seen = new Set<ts.Symbol>();
  const queue = [...exported];
  const reference = (at: ts.Node | undefined, from: string, report: boolean) => {
    const raw = at && checker.getSymbolAtLocation(at);
    if (!raw) return;
    const s = resolve(raw);
    const declarations = (s.declarations ?? []).filter((d) => isOurs(d) && isTopLevel(d));
    if (declarations.length === 0) return;
    if (report && !exported.has(s)) missing.set(s.name, `${s.name} (named by ${from}, in ${path.relative(ROOT, declarations[0]!.getSourceFile().fileName)})`);
    if (!seen.has(s)) queue.push(s);
  };
  const lastName = (n: ts.EntityName | ts.Expression): ts.Node => (ts.isQualifiedName(n) ? n.right : ts.isPropertyAccessExpression(n) ? n.name : n);
  const visit = (node: ts.Node, from: string): void => {
    if (ts.isTypeReferenceNode(node)) reference(lastName(node.typeName), from, true);
    else if (ts.isExpressionWithTypeArguments(node)) reference(lastName(node.expression), from, true);
    else if (ts.isImportTypeNode(node) && node.qualifier) reference(lastName(node.qualifier), from, !node.isTypeOf);
    else if (ts.isTypeQueryNode(node)) reference(lastName(node.exprName), from, false);
    ts.forEachChild(node, (child) => visit(child, from));
  };
  while (queue.length > 0) {
    const s = queue.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of s.declarations ?? []) if (isOurs(d)) visit(d, s.name);
  }
  return [...missing.values()].sort();
}

/** The types a user writes to code against the store port, or to open the SQLite adapter with options. */
const STORE_PORT_TYPES = [
  'Store',
  'StoreTx',
  'OrdersPort',
  'JournalPort',
  'OutboxPort',
  'OperationsPort',
  'TimersPort',
  'LimiterPort',
  'CursorsPort',
  'CampaignsPort',
  'HaltsPort',
  'CountersPort',
  'SqliteOptions',
] as const;

// The built package's three entry points, imported by name as a user would (self-reference).
describe('package exports', () => {
  it('ym-orders, ym-orders/machines and ym-orders/testing load from dist with their public names', () => {
    const script = `
      const core = await import('ym-orders');
      const machines = await import('ym-orders/machines');
      const testing = await import('ym-orders/testing');
      console.log(JSON.stringify({
        core: ['createEngine', 'ChangeRefusedError', 'StoreError', 'MarketAuthError', 'YmOrdersError', 'SqliteStore', 'openStore'].filter((n) => typeof core[n] === 'function'),
        storeIsAValue: 'Store' in core,
        storeErrorCodes: Object.values(core.STORE_ERROR_CODES).sort(),
        machines: ['orderMachine', 'operationMachine', 'explainTransition', 'toMermaid', 'orderEffects', 'operationEffects'].filter((n) => n in machines),
        statuses: machines.ORDER_STATUSES.length,
        substatuses: machines.ORDER_SUBSTATUSES.length,
        testing: typeof testing.startFakeMarket,
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      core: ['createEngine', 'ChangeRefusedError', 'StoreError', 'MarketAuthError', 'YmOrdersError', 'SqliteStore', 'openStore'],
      // The store is a port (an interface, types only); SqliteStore is its first adapter.
      storeIsAValue: false,
      storeErrorCodes: ['DB_BUSY', 'DB_CANNOT_OPEN', 'DB_CLOSED', 'DB_CORRUPT', 'DB_FAILED', 'DB_NOT_OURS', 'DB_SCHEMA_TOO_NEW', 'DB_UNAVAILABLE', 'DB_UNSUPPORTED'],
      machines: ['orderMachine', 'operationMachine', 'explainTransition', 'toMermaid', 'orderEffects', 'operationEffects'],
      statuses: 12,
      substatuses: 125,
      testing: 'function',
    });
  });

  it('ships type declarations for each entry point', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const fs = require('node:fs');
      const pkg = require('./package.json');
      console.log(JSON.stringify(Object.values(pkg.exports).filter((e) => typeof e === 'object').map((e) => fs.existsSync(e.types))));`], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([true, true, true]);
  });

  it('a strict consumer (nodenext, skipLibCheck off) type-checks against the declarations, and each promised type error is one', () => {
    const p = strictProgram();
    expect(ts.getPreEmitDiagnostics(p).map(describeDiagnostic)).toEqual([]);
  }, 300_000);

  it('the published declarations never name the SQLite driver, whose types are a dev dependency', () => {
    const p = strictProgram();
    const driverTypes = p.getSourceFiles().filter((f) => f.fileName.includes('/node_modules/@types/better-sqlite3/')).map((f) => f.fileName);
    const naming = p.getSourceFiles().filter((f) => f.fileName.startsWith(DIST) && f.text.includes('better-sqlite3')).map((f) => path.relative(ROOT, f.fileName));
    expect({ driverTypes, naming }).toEqual({ driverTypes: [], naming: [] });
  }, 300_000);

  it('exports the store port by name: Store, StoreTx, one interface per concern, and the SQLite adapter\'s options', () => {
    const p = strictProgram();
    const checker = p.getTypeChecker();
    const entry = checker.getSymbolAtLocation(p.getSourceFile(path.join(ROOT, (pkg.exports['.'] as { types: string }).types))!)!;
    const names = new Set(checker.getExportsOfModule(entry).map((s) => s.name));
    expect(STORE_PORT_TYPES.filter((name) => !names.has(name))).toEqual([]);
  }, 300_000);

  it('every type a public signature names is exported by an entry point', () => {
    expect(unexportedButReferenced(strictProgram())).toEqual([]);
  }, 300_000);
});
