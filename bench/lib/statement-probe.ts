// What the PostgreSQL adapter really sends, so a raw-driver baseline can send exactly the same.
//
// recordStatements wraps pg's Client.prototype.query for the length of one call: every pooled
// connection in this process (the adapter's pool included; its handle is private) goes through
// it, so every statement is seen as sent: its prepared-statement name, text, values and how it
// was called, and its answer (rows, rowCount). The driver is the same module instance for the
// engine and the bench (one node_modules), so nothing in src/ needs a hook.

import pg from 'pg';

export interface SentStatement {
  /** The prepared statement's name; undefined for an unnamed statement (BEGIN, COMMIT, …). */
  readonly name: string | undefined;
  readonly text: string;
  readonly values: readonly unknown[];
  /** `text`: query('BEGIN'); `config`: query({ name, text, values }). */
  readonly form: 'text' | 'config';
  rows: readonly Record<string, unknown>[];
  rowCount: number | null;
}

type Query = (this: pg.Client, ...args: unknown[]) => unknown;

function describeCall(args: readonly unknown[]): Pick<SentStatement, 'name' | 'text' | 'values' | 'form'> {
  const [first, second] = args;
  if (typeof first === 'string') return { name: undefined, text: first, values: Array.isArray(second) ? [...(second as unknown[])] : [], form: 'text' };
  const config = first as { name?: string; text: string; values?: unknown[] };
  return { name: config.name, text: config.text, values: [...(config.values ?? [])], form: 'config' };
}

/** Runs `fn` and returns what it returned and every statement sent meanwhile, in the order sent, each with its answer. */
export async function recordStatements<T>(fn: () => Promise<T>): Promise<{ value: T; statements: SentStatement[] }> {
  const proto = pg.Client.prototype as unknown as { query: Query };
  const original = proto.query;
  const statements: SentStatement[] = [];
  const answers: Promise<unknown>[] = [];
  proto.query = function (this: pg.Client, ...args: unknown[]): unknown {
    const result = original.apply(this, args);
    const sent: SentStatement = { ...describeCall(args), rows: [], rowCount: null };
    statements.push(sent);
    if (result instanceof Promise) {
      answers.push(
        result.then(
          (r: pg.QueryResult) => {
            sent.rows = r.rows;
            sent.rowCount = r.rowCount;
          },
          () => undefined,
        ),
      );
    }
    return result;
  };
  let value: T;
  try {
    value = await fn();
    // A statement sent without being awaited (a NOTIFY after COMMIT, say) still gets its answer in.
    await Promise.all(answers);
  } finally {
    proto.query = original;
  }
  return { value, statements };
}
