// Where the CLI writes: human lines or one JSON document on stdout, errors and warnings on
// stderr. Every string passes through redaction first, so the API key cannot be printed even
// if some message echoed it.

import { REDACTED } from '../market/redact.js';

export interface OutputStreams {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream;
}

export interface OutputOptions {
  readonly json: boolean;
  readonly verbose: boolean;
}

// Shorter "secrets" would redact ordinary words; real keys are long.
const MIN_SECRET_LENGTH = 6;

export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  readonly #streams: OutputStreams;
  readonly #secrets = new Set<string>();

  constructor(streams: OutputStreams, options: OutputOptions, secrets: readonly (string | undefined)[] = []) {
    this.#streams = streams;
    this.json = options.json;
    this.verbose = options.verbose;
    for (const s of secrets) this.addSecret(s);
  }

  /** Whether live progress may be drawn: a terminal, and not in --json mode. */
  get interactive(): boolean {
    return !this.json && this.#streams.stdout.isTTY === true;
  }

  get columns(): number {
    return this.#streams.stdout.columns ?? 80;
  }

  addSecret(secret: string | undefined): void {
    if (secret !== undefined && secret.length >= MIN_SECRET_LENGTH) this.#secrets.add(secret);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) out = out.replaceAll(s, REDACTED);
    return out;
  }

  /** A human line on stdout; nothing in --json mode (stdout then carries only the JSON document). */
  line(text = ''): void {
    if (!this.json) this.raw(`${text}\n`);
  }

  lines(texts: readonly string[]): void {
    for (const t of texts) this.line(t);
  }

  /** Writes to stdout as is (progress bars); redacted like everything else. */
  raw(text: string): void {
    this.#streams.stdout.write(this.redact(text));
  }

  /** The one JSON document of a --json run. */
  document(value: unknown): void {
    this.raw(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Human line, or the JSON document in --json mode. */
  result(human: () => readonly string[], json: () => unknown): void {
    if (this.json) this.document(json());
    else this.lines(human());
  }

  warn(text: string): void {
    this.#streams.stderr.write(this.redact(`warning: ${text}\n`));
  }

  /** Extra detail for --verbose, on stderr. */
  debug(text: string): void {
    if (this.verbose) this.#streams.stderr.write(this.redact(`${text}\n`));
  }

  error(code: string, message: string): void {
    this.#streams.stderr.write(this.redact(`error [${code}]: ${message}\n`));
  }

  /** Plain stderr text (hints after an error). */
  note(text: string): void {
    this.#streams.stderr.write(this.redact(`${text}\n`));
  }
}
