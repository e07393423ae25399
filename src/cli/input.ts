// Reading input: order ids (arguments, --file or stdin), whole files or stdin as text.

import fs from 'node:fs';
import path from 'node:path';
import { CLI_ERROR_CODES, CliError, inputError, usageError } from './errors.js';
import type { CliIo } from './context.js';

const MAX_ID = Number.MAX_SAFE_INTEGER;

export async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export function readTextFile(file: string, cwd: string, what = 'file'): string {
  try {
    return fs.readFileSync(path.resolve(cwd, file), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? String(error));
    throw new CliError(CLI_ERROR_CODES.fileUnreadable, `Cannot read ${what} ${file}: ${why}.`);
  }
}

/** A positive integer order id, or INPUT_INVALID naming where it came from. */
export function parseOrderId(text: string, where: string): number {
  if (!/^\d{1,16}$/.test(text) || Number(text) <= 0 || Number(text) > MAX_ID) {
    throw inputError(`${where}: "${text.length > 40 ? `${text.slice(0, 40)}…` : text}" is not an order id (a positive integer).`);
  }
  return Number(text);
}

/** Ids separated by whitespace, commas or new lines; `#` starts a comment. */
export function parseIdList(text: string, source: string): number[] {
  const ids: number[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const content = line.replace(/#.*/, '');
    for (const token of content.split(/[\s,;]+/).filter(Boolean)) ids.push(parseOrderId(token, `${source} line ${i + 1}`));
  });
  return ids;
}

/** Ids from the arguments, else `--file`, else stdin (when it is not a terminal); duplicates dropped. */
export async function collectIds(io: CliIo, args: readonly string[], file: string | undefined): Promise<number[]> {
  let ids: number[];
  if (args.length > 0) {
    if (file !== undefined) throw usageError('Give order ids either as arguments or with --file, not both.');
    ids = args.flatMap((a) => a.split(',').filter(Boolean).map((t) => parseOrderId(t.trim(), 'argument')));
  } else if (file !== undefined) {
    ids = parseIdList(file === '-' ? await readStdin(io.stdin) : readTextFile(file, io.cwd, 'id file'), file === '-' ? 'stdin' : file);
  } else if (io.stdin.isTTY !== true) {
    ids = parseIdList(await readStdin(io.stdin), 'stdin');
  } else {
    throw usageError('No order ids: pass them as arguments, with --file <path>, or on stdin.');
  }
  if (ids.length === 0) throw inputError('No order ids were given (the input was empty).');
  return [...new Set(ids)];
}

/** A non-negative number of seconds from an option, in milliseconds. */
export function parseSeconds(text: string, option: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || text.trim() === '') throw usageError(`${option} "${text}" is not a number of seconds.`);
  return n * 1000;
}

/** A whole number of at least 1 from an option (a count of pages, say). */
export function parsePositiveInteger(text: string, option: string): number {
  if (!/^\d{1,9}$/.test(text.trim()) || Number(text) < 1) throw usageError(`${option} "${text}" is not a whole number of at least 1.`);
  return Number(text);
}
