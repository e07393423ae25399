// Benchmark children run on JavaScript compiled by tsc, as users run the package, not under
// tsx: tsx's loader thread alone adds ~35 MB of RSS and would blur the memory figures. We
// compile machines/, src/ and bench/ once per run into a temp dir that links node_modules.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeDir } from './tmp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let compiled: { dir: string; worker: string } | undefined;

/** The compiled bench/worker.js, compiling on first use. Type errors are reported, not fatal. */
export function compiledWorker(): string {
  if (compiled) return compiled.worker;
  const dir = makeTempDir('build');
  const out = path.join(dir, 'out');
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const t = performance.now();
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'bench/tsconfig.compiled.json'), '--outDir', out], { encoding: 'utf8' });
  const worker = path.join(out, 'bench/worker.js');
  if (!fs.existsSync(worker)) {
    removeDir(dir);
    throw new Error(`tsc emitted no bench/worker.js:\n${result.stdout}${result.stderr}`);
  }
  if (result.status !== 0) {
    const errors = `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.includes('error TS'));
    console.error(`  (tsc reported ${errors.length} type error(s); JavaScript was emitted and is used. First: ${errors[0] ?? '?'})`);
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  console.error(`  compiled the engine and benchmarks with tsc in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  compiled = { dir, worker };
  return worker;
}

export function removeCompiled(): void {
  if (compiled) removeDir(compiled.dir);
  compiled = undefined;
}
