// Running the real `ym-orders` binary in tests: make sure dist/ is built (and fresh), spawn
// `node bin/ym-orders.js …` with a test API key in the child's env, and keep every byte the
// children printed so the suites can prove the key never appeared.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'ym-orders.js');
const MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** A key that must never show up in any output or database file. */
export const TEST_API_KEY = `ym-test-key-${randomBytes(16).toString('hex')}`;

/** Everything any child wrote, stdout and stderr. */
export const transcript: string[] = [];

const running = new Set<ChildProcess>();

/** Kills children still running (a failed test may not have stopped its own); call in afterAll. */
export function killRunning(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function isFresh(): boolean {
  if (!fs.existsSync(MAIN)) return false;
  const built = fs.statSync(MAIN).mtimeMs;
  return newestSource(path.join(ROOT, 'src')) <= built && newestSource(path.join(ROOT, 'machines')) <= built;
}

/**
 * Builds dist/ with `tsc -p tsconfig.build.json` when it is missing or older than the sources.
 * Test files run in parallel, so one builds under a lock directory while the others wait.
 */
export async function ensureBuilt(): Promise<void> {
  const lock = path.join(os.tmpdir(), `ym-orders-cli-build-${Buffer.from(ROOT).toString('hex').slice(-24)}.lock`);
  for (;;) {
    if (isFresh()) return;
    try {
      fs.mkdirSync(lock);
    } catch {
      // Someone else is building; a lock older than 3 minutes was left by a crash.
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 180_000) fs.rmSync(lock, { recursive: true, force: true });
      } catch {
        // gone already
      }
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    try {
      if (isFresh()) return;
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
      if (!fs.existsSync(MAIN)) throw new Error(`tsc did not produce ${MAIN}:\n${result.stdout}${result.stderr}`);
      // tsc emits despite type errors elsewhere; say so, but run the CLI tests anyway.
      if (result.status !== 0) console.warn(`tsc -p tsconfig.build.json reported errors:\n${result.stdout}`);
      // Touch main.js so the freshness check passes even if tsc left it unchanged.
      const now = new Date();
      fs.utimesSync(MAIN, now, now);
      return;
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly cwd?: string;
  /** Extra env; YM_API_KEY defaults to TEST_API_KEY (pass undefined to unset it). */
  readonly env?: Record<string, string | undefined>;
  readonly input?: string;
  readonly timeoutMs?: number;
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  // A YM_API_URL of the shell running the tests must not point the children anywhere.
  const { YM_API_URL: _fromShell, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = { ...inherited, YM_API_KEY: TEST_API_KEY, NO_COLOR: '1' };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface RunningCli {
  readonly child: ChildProcess;
  /** Resolves with the stdout text so far once it matches `pattern`. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** The same for stderr (warnings, errors). */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<string>;
  readonly done: Promise<CliResult>;
}

export function startCli(args: readonly string[], options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: childEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const streams = { stdout: '', stderr: '' };
  const waiters: { stream: keyof typeof streams; pattern: RegExp; resolve: (s: string) => void }[] = [];
  const listen = (stream: keyof typeof streams) => (chunk: string) => {
    streams[stream] += chunk;
    for (const w of [...waiters]) {
      if (w.stream === stream && w.pattern.test(streams[stream])) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(streams[stream]);
      }
    }
  };
  child.stdout!.setEncoding('utf8').on('data', listen('stdout'));
  child.stderr!.setEncoding('utf8').on('data', listen('stderr'));
  // A spawn that fails (its cwd removed, say) ends as a failed run ('close' follows), not as an
  // error nobody handles.
  child.on('error', (error) => (streams.stderr += `spawn failed: ${error.message}\n`));
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const timeout = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timeout);
      running.delete(child);
      transcript.push(streams.stdout, streams.stderr);
      resolve({ code, signal, stdout: streams.stdout, stderr: streams.stderr });
    });
  });
  const waitFor = (stream: keyof typeof streams, pattern: RegExp, timeoutMs = 20_000): Promise<string> => {
    if (pattern.test(streams[stream])) return Promise.resolve(streams[stream]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${pattern} on ${stream} within ${timeoutMs} ms; got:\n${streams.stdout}\n${streams.stderr}`)), timeoutMs);
      waiters.push({ stream, pattern, resolve: (s) => (clearTimeout(timer), resolve(s)) });
      void done.then(() => reject(new Error(`exited before ${pattern} on ${stream}; stdout:\n${streams.stdout}\nstderr:\n${streams.stderr}`)));
    });
  };
  return {
    child,
    done,
    waitForStdout: (pattern, timeoutMs) => waitFor('stdout', pattern, timeoutMs),
    waitForStderr: (pattern, timeoutMs) => waitFor('stderr', pattern, timeoutMs),
  };
}

export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Parses stdout as the one JSON document a --json run prints. */
export function json<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ym-orders-cli-'));
}

/** Every file under `dir` whose bytes contain `secret` (databases and their -wal/-shm included). */
export function filesContaining(dir: string, secret: string): string[] {
  const hits: string[] = [];
  const needle = Buffer.from(secret);
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (fs.readFileSync(full).includes(needle)) hits.push(full);
    }
  };
  walk(dir);
  return hits;
}

const PAGE_SIZE = 4096;

/**
 * Writes the SQLite database another application would leave: one table, `invoices`, and no
 * application_id. Built byte by byte from the documented file format (sqlite.org/fileformat2.html)
 * so that no test outside the SQLite adapter needs the driver or SQL: page 1 is the schema table
 * with one row, page 2 the table's empty root.
 */
export function writeForeignDatabase(file: string): void {
  const sql = 'CREATE TABLE invoices (id INTEGER PRIMARY KEY)';
  // The schema row (type, name, tbl_name, rootpage, sql) as a record: a header of serial types
  // (text of n bytes is 2n+13, a one-byte integer is 1; every value here fits one varint byte).
  const texts = ['table', 'invoices', 'invoices'];
  const serialTypes = [...texts.map((t) => 2 * t.length + 13), 1, 2 * sql.length + 13];
  const record = Buffer.concat([
    Buffer.from([serialTypes.length + 1, ...serialTypes]),
    ...texts.map((t) => Buffer.from(t, 'ascii')),
    Buffer.from([2]),
    Buffer.from(sql, 'ascii'),
  ]);
  // A table leaf cell: payload size, rowid 1, payload.
  const cell = Buffer.concat([Buffer.from([record.length, 1]), record]);
  const bytes = Buffer.alloc(2 * PAGE_SIZE);
  bytes.write('SQLite format 3\0', 0, 'latin1');
  bytes.writeUInt16BE(PAGE_SIZE, 16);
  bytes.set([1, 1, 0, 64, 32, 32], 18); // rollback journal, no reserved bytes, the fixed payload fractions
  bytes.writeUInt32BE(1, 24); // file change counter
  bytes.writeUInt32BE(2, 28); // pages
  bytes.writeUInt32BE(1, 40); // schema cookie
  bytes.writeUInt32BE(4, 44); // schema format
  bytes.writeUInt32BE(1, 56); // UTF-8
  bytes.writeUInt32BE(1, 92); // version-valid-for = the change counter
  bytes.writeUInt32BE(3_045_000, 96);
  // Page 1's b-tree header (after the file header): a table leaf with one cell at the page's end.
  const cellAt = PAGE_SIZE - cell.length;
  bytes[100] = 0x0d;
  bytes.writeUInt16BE(1, 103);
  bytes.writeUInt16BE(cellAt, 105);
  bytes.writeUInt16BE(cellAt, 108);
  cell.copy(bytes, cellAt);
  // Page 2: an empty table leaf, its content area starting at the page's end.
  bytes[PAGE_SIZE] = 0x0d;
  bytes.writeUInt16BE(PAGE_SIZE, PAGE_SIZE + 5);
  fs.writeFileSync(file, bytes);
}

/** A loopback URL nothing listens on: a port bound and closed again, so connecting is refused. */
export async function unreachableUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
