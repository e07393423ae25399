// Benchmark children run on JavaScript compiled by tsc, as users run the package, not under
// tsx: tsx's loader thread alone adds ~35 MB of RSS and would blur the memory figures. We
// compile machines/, src/ and bench/ once per run into a temp dir that links node_modules.
//
// A git ref of this repository can be compiled the same way (`npm run bench -- --baseline <ref>`),
// so bench 1 can load the engine before a change beside the engine after it, in one process. The
// ref is extracted with `git archive` into a temp dir (the working tree and git state are never
// touched) and compiled with its own bench/tsconfig.compiled.json. It runs on this checkout's
// node_modules: the comparison is of our code, on the same dependencies.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeDir } from './tmp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE_MODULES = path.join(ROOT, 'node_modules');
const TSC = path.join(NODE_MODULES, 'typescript/bin/tsc');

/** Where a tree was compiled: `dir` is the temp dir to remove, `out` the compiled tree inside it. */
interface Compiled {
  readonly dir: string;
  readonly out: string;
}

/** This tree, and one tree per git commit, each compiled once per run. */
let ours: Compiled | undefined;
const atCommit = new Map<string, Compiled>();

/**
 * Compiles the tree at `root` into `dir`/out and returns that out dir, which must then hold
 * `entry` (e.g. bench/worker.js). Type errors are reported, not fatal.
 */
function compileTree(root: string, dir: string, label: string, entry: string): string {
  const out = path.join(dir, 'out');
  const t = performance.now();
  const result = spawnSync(process.execPath, [TSC, '-p', path.join(root, 'bench/tsconfig.compiled.json'), '--outDir', out], { encoding: 'utf8' });
  if (!fs.existsSync(path.join(out, entry))) throw new Error(`tsc emitted no ${entry} for ${label}:\n${result.stdout}${result.stderr}`);
  if (result.status !== 0) {
    const errors = `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.includes('error TS'));
    console.error(`  (tsc reported ${errors.length} type error(s) in ${label}; JavaScript was emitted and is used. First: ${errors[0] ?? '?'})`);
  }
  fs.symlinkSync(NODE_MODULES, path.join(out, 'node_modules'), 'dir');
  console.error(`  compiled ${label} with tsc in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return out;
}

const WORKER = 'bench/worker.js';
const ENGINE = 'src/engine/engine.js';

/** The compiled bench/worker.js of this tree, compiling on first use. */
export function compiledWorker(): string {
  if (!ours) {
    const dir = makeTempDir('build');
    try {
      ours = { dir, out: compileTree(ROOT, dir, 'the engine and benchmarks', WORKER) };
    } catch (error) {
      removeDir(dir);
      throw error;
    }
  }
  return path.join(ours.out, WORKER);
}

/** The full commit id of `ref` in this repository; throws a readable error for anything else. */
export function resolveCommit(ref: string): string {
  const result = spawnSync('git', ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`--baseline ${ref}: not a commit of this repository (${ROOT})`);
  return result.stdout.trim();
}

/**
 * The compiled src/engine/engine.js (the module that exports createEngine) of the tree at
 * `commit` (see resolveCommit), extracting and compiling on first use.
 */
export function compiledEngineAt(commit: string): string {
  let known = atCommit.get(commit);
  if (!known) {
    const dir = makeTempDir(`ref-${commit.slice(0, 7)}`);
    try {
      const tree = path.join(dir, 'tree');
      fs.mkdirSync(tree);
      const archive = spawnSync('git', ['archive', '--format=tar', commit], { cwd: ROOT, maxBuffer: 1024 ** 3 });
      if (archive.status !== 0) throw new Error(`git archive ${commit} failed: ${archive.stderr.toString().trim()}`);
      const untar = spawnSync('tar', ['-x', '-C', tree], { input: archive.stdout });
      if (untar.status !== 0) throw new Error(`tar -x of ${commit} failed: ${untar.stderr.toString().trim()}`);
      // tsc resolves the ref's imports (xstate, better-sqlite3, @types/node) from here.
      fs.symlinkSync(NODE_MODULES, path.join(tree, 'node_modules'), 'dir');
      known = { dir, out: compileTree(tree, dir, `commit ${commit.slice(0, 7)}`, ENGINE) };
      atCommit.set(commit, known);
    } catch (error) {
      removeDir(dir);
      throw error;
    }
  }
  return path.join(known.out, ENGINE);
}

export function removeCompiled(): void {
  if (ours) removeDir(ours.dir);
  ours = undefined;
  for (const { dir } of atCommit.values()) removeDir(dir);
  atCommit.clear();
}
