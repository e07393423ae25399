// `npm run check:package`: the package as a user gets it. Builds dist/, packs the tarball, then
//  1. checks what the tarball holds: no output without a source (a stale dist/), source maps
//     that carry their sources, README, LICENSE and CHANGELOG;
//  2. publint: package.json's fields against the files shipped;
//  3. arethetypeswrong with the esm-only profile: ym-orders is ESM only ("type": "module",
//     `import` conditions only), so the CommonJS resolutions (node10, node16 from CJS) are not
//     offered and not judged; the ESM ones (node16/nodenext from ESM, bundler) must be clean;
//  4. test/consumer, a strict TypeScript project (nodenext, strict, skipLibCheck off), copied to a
//     temporary folder with the tarball, the lowest xstate the peer range allows and
//     @statelyai/inspect installed from the npm cache (the registry only for what it lacks),
//     then type-checked and run.
// Any failure exits non-zero. Run it after `npm ci`; it needs no network beyond the npm registry.

import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface PackageJson {
  name: string;
  version: string;
  peerDependencies?: Record<string, string>;
}

function run(command: string, args: readonly string[], options: ExecFileSyncOptions = {}): void {
  const shown = [path.basename(command), ...args].join(' ');
  console.log(`\n$ ${shown}`);
  try {
    execFileSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  } catch (error) {
    fail(`\`${shown}\` failed (exit ${(error as { status?: number }).status ?? 'unknown'})`);
  }
}

class CheckFailed extends Error {}

function fail(message: string): never {
  throw new CheckFailed(message);
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** The version installed in the project's node_modules, so the consumer gets it from the cache. */
function installed(name: string): string {
  return readJson<PackageJson>(path.join(root, 'node_modules', name, 'package.json')).version;
}

/** The lowest version a `^x.y.z` peer range allows: what an app on the oldest supported xstate has. */
function lowestAllowed(range: string | undefined, name: string): string {
  const match = /^\^(\d+\.\d+\.\d+)$/.exec(range ?? '');
  if (!match) fail(`peerDependencies.${name} is "${range}"; this check expects a caret range such as ^5.19.0`);
  return match[1]!;
}

function checkContents(files: readonly string[], unpacked: string): void {
  const shipped = new Set(files);
  for (const required of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']) {
    if (!shipped.has(required)) fail(`the tarball lacks ${required}`);
  }
  for (const file of files) {
    if (!file.startsWith('dist/')) continue;
    const source = file.replace(/^dist\//, '').replace(/(\.d\.ts|\.js\.map|\.js)$/, '.ts');
    if (!existsSync(path.join(root, source))) fail(`${file} has no source ${source}: dist/ is stale (rm -rf dist && npm run build)`);
    if (file.endsWith('.map')) {
      const map = readJson<{ sources: string[]; sourcesContent?: (string | null)[] }>(path.join(unpacked, file));
      if (map.sourcesContent?.length !== map.sources.length || map.sourcesContent.some((s) => typeof s !== 'string')) {
        fail(`${file} points at sources the package does not ship (set inlineSources, or ship no maps)`);
      }
    }
  }
  console.log(`contents: ${files.length} files, every dist/ file has its source, every source map carries its sources`);
}

const started = Date.now();
const pkg = readJson<PackageJson>(path.join(root, 'package.json'));
const work = mkdtempSync(path.join(tmpdir(), 'ym-orders-check-package-'));
let ok = false;
try {
  run(npm, ['run', 'build']);
  const packed = execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
  const [info] = JSON.parse(packed) as { filename: string; size: number; files: { path: string }[] }[];
  if (!info) fail('npm pack printed nothing');
  const tarball = path.join(work, info.filename);
  console.log(`packed ${info.filename}: ${info.files.length} files, ${Math.round(info.size / 1024)} kB`);
  const unpacked = path.join(work, 'unpacked');
  mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1']);
  checkContents(info.files.map((f) => f.path), unpacked);

  run(npm, ['exec', '--no', '--', 'publint', 'run', tarball, '--strict']);
  run(npm, ['exec', '--no', '--', 'attw', tarball, '--profile', 'esm-only']);

  const consumer = path.join(work, 'consumer');
  cpSync(path.join(root, 'test', 'consumer'), consumer, { recursive: true, filter: (src) => !/[\\/](node_modules|dist)$/.test(src) });
  const xstate = lowestAllowed(pkg.peerDependencies?.xstate, 'xstate');
  const sqlite = installed('better-sqlite3');
  run(
    npm,
    [
      'install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts',
      tarball,
      `xstate@${xstate}`,
      // Pinned to the version this project built, whose native binding is copied below.
      `better-sqlite3@${sqlite}`,
      `@statelyai/inspect@${installed('@statelyai/inspect')}`,
      `typescript@${installed('typescript')}`,
      `@types/node@${installed('@types/node')}`,
    ],
    { cwd: consumer },
  );
  if (existsSync(path.join(consumer, 'node_modules', 'ym-orders', 'node_modules', 'xstate'))) {
    fail('ym-orders got an xstate of its own beside the app\'s: xstate must be a peer dependency');
  }
  // Scripts were skipped (no prebuilt-binary download): the binding is the one `npm ci` built
  // from source here for the same better-sqlite3 and the same Node.js.
  const binding = path.join('node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  mkdirSync(path.dirname(path.join(consumer, binding)), { recursive: true });
  copyFileSync(path.join(root, binding), path.join(consumer, binding));

  run(process.execPath, [path.join('node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], { cwd: consumer });
  run(process.execPath, [path.join('dist', 'main.js')], { cwd: consumer });
  ok = true;
  console.log(`\ncheck:package: ok in ${((Date.now() - started) / 1000).toFixed(1)} s (${pkg.name}@${pkg.version}, consumer on xstate ${xstate})`);
} catch (error) {
  if (!(error instanceof CheckFailed)) throw error;
  console.error(`\ncheck:package: ${error.message}`);
  process.exitCode = 1;
} finally {
  if (ok) rmSync(work, { recursive: true, force: true });
  else console.error(`check:package: the tarball and the consumer are kept in ${work}`);
}
