// A replay of the statements the PostgreSQL adapter sent for a batch of changes (recorded by
// statement-probe.ts), for any other orders: the raw-driver baseline of bench 6.
//
// The recording is of one transaction that changed two orders, A then B, at a known time T. What
// mentions A is A's share, what mentions B is B's, the rest belongs to the transaction (BEGIN,
// COMMIT, a NOTIFY). A's statements become the template of one change: a value that is A becomes
// the order's id, T becomes the batch's time, a string holding either (the snapshot JSON, the
// event, the idempotency key) has them replaced, and a value that an earlier statement of the
// change returned (RETURNING seq) is taken from that statement's answer in the replay; every
// other value is sent as recorded. The template is checked by rebuilding B's statements from it:
// they must come out exactly as the adapter sent them, or the plan is refused (a value derived
// another way, statements shared by two changes, a shape this cannot express).

import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import type { SentStatement } from './statement-probe.js';
import { plainTemplateOf, plainValueOf, type PlainValue } from './value-template.js';

type Value = PlainValue | { readonly kind: 'returned'; readonly statement: number; readonly field: string };

interface Template {
  readonly name: string | undefined;
  readonly text: string;
  readonly form: 'text' | 'config';
  readonly values: readonly Value[];
  /** What the adapter's statement wrote or read: the replay must match it, statement by statement. */
  readonly rowCount: number | null;
}

export interface ReplayPlan {
  /** The transaction's own statements before the first change (BEGIN). */
  readonly before: readonly Template[];
  readonly perChange: readonly Template[];
  /** After the last change (COMMIT, and whatever follows it). */
  readonly after: readonly Template[];
  /** The first order's id and the time of the recording: what the template's values replace. */
  readonly recordedOrderId: number;
  readonly recordedNow: number;
}

/** The recording: two changes, `orderIds` [A, B] in that order, made at `now`. */
export interface Recording {
  readonly statements: readonly SentStatement[];
  readonly orderIds: readonly [number, number];
  readonly now: number;
}

export class ReplayPlanError extends Error {
  readonly code = 'BENCH_REPLAY_PLAN';
}

function mentions(statement: SentStatement, orderId: number): boolean {
  return statement.values.some((v) => v === orderId || (typeof v === 'string' && v.includes(String(orderId))));
}

function templateOf(statements: readonly SentStatement[], orderId: number | undefined, now: number): Template[] {
  return statements.map((s, j) => ({
    name: s.name,
    text: s.text,
    form: s.form,
    rowCount: s.rowCount,
    values: s.values.map((v): Value => {
      const plain = plainTemplateOf(v, orderId, now);
      if (plain !== undefined) return plain;
      if (orderId !== undefined && typeof v === 'number') {
        for (let k = 0; k < j; k++) {
          if (!/\bRETURNING\b/i.test(statements[k]!.text)) continue;
          const field = Object.entries(statements[k]!.rows[0] ?? {}).find(([, returned]) => returned === v)?.[0];
          if (field !== undefined) return { kind: 'returned', statement: k, field };
        }
      }
      return { kind: 'recorded', value: v };
    }),
  }));
}

/** The values of `template` for `orderId` at `now`; `answers` are the rows the change's earlier statements got back. */
function valuesOf(template: Template, orderId: number, recordedOrderId: number | undefined, now: number, recordedNow: number, answers: readonly (readonly Record<string, unknown>[])[]): unknown[] {
  const substitution = { orderId, recordedOrderId, now, recordedNow };
  return template.values.map((v) => (v.kind === 'returned' ? answers[v.statement]?.[0]?.[v.field] : plainValueOf(v, substitution)));
}

export function planReplay(recording: Recording): ReplayPlan {
  const [a, b] = recording.orderIds;
  const all = recording.statements;
  const ofA = all.flatMap((s, i) => (mentions(s, a) ? [i] : []));
  const ofB = all.flatMap((s, i) => (mentions(s, b) ? [i] : []));
  const refuse = (why: string) => new ReplayPlanError(`cannot replay the adapter's statements (${all.length} recorded: ${all.map((s) => s.name ?? s.text).join(', ')}): ${why}`);
  if (ofA.length === 0 || ofB.length === 0) throw refuse('no statement names one of the two orders');
  if (ofA.some((i) => ofB.includes(i))) throw refuse('a statement names both orders (a multi-row statement)');
  const [firstA, lastA, firstB, lastB] = [ofA[0]!, ofA.at(-1)!, ofB[0]!, ofB.at(-1)!];
  if (firstB !== lastA + 1) throw refuse('the two changes are not back to back (interleaved, or statements between them)');
  const blockA = all.slice(firstA, lastA + 1);
  const blockB = all.slice(firstB, lastB + 1);
  const perChange = templateOf(blockA, a, recording.now);
  if (blockB.length !== blockA.length) throw refuse(`the changes sent ${blockA.length} and ${blockB.length} statements`);
  for (const [j, sent] of blockB.entries()) {
    const rebuilt = valuesOf(perChange[j]!, b, a, recording.now, recording.now, blockB.map((s) => s.rows));
    if (sent.text !== perChange[j]!.text || sent.name !== perChange[j]!.name || !isDeepStrictEqual(rebuilt, sent.values)) {
      const at = sent.values.findIndex((v, k) => !isDeepStrictEqual(v, rebuilt[k]));
      const why = at < 0 ? `the first order's statement ${j + 1} was ${perChange[j]!.name ?? perChange[j]!.text}` : `value $${at + 1} was ${JSON.stringify(sent.values[at])}, the template gives ${JSON.stringify(rebuilt[at])}`;
      throw refuse(`statement ${sent.name ?? sent.text} for the second order is not the first order's with its id: ${why}`);
    }
    if (sent.rowCount !== perChange[j]!.rowCount) throw refuse(`statement ${sent.name ?? sent.text} touched ${sent.rowCount} rows for one order and ${perChange[j]!.rowCount} for the other`);
  }
  return {
    before: templateOf(all.slice(0, firstA), undefined, recording.now),
    perChange,
    after: templateOf(all.slice(lastB + 1), undefined, recording.now),
    recordedOrderId: a,
    recordedNow: recording.now,
  };
}

async function send(client: pg.PoolClient, t: Template, values: unknown[]): Promise<pg.QueryResult> {
  const result = t.form === 'text' ? await client.query(t.text, values.length > 0 ? values : undefined) : await client.query({ ...(t.name !== undefined ? { name: t.name } : {}), text: t.text, values });
  if (result.rowCount !== t.rowCount) throw new ReplayPlanError(`replayed ${t.name ?? t.text}: ${result.rowCount} rows, the adapter's touched ${t.rowCount}`);
  return result;
}

/**
 * One transaction on `client`, as the adapter sent it, for `orderIds` at `now`: the plan's
 * statements before, each change's, and after, every statement awaited before the next (as the
 * adapter does). Each statement must touch as many rows as the adapter's did.
 */
export async function replay(client: pg.PoolClient, plan: ReplayPlan, orderIds: readonly number[], now: number): Promise<void> {
  const none: readonly (readonly Record<string, unknown>[])[] = [];
  try {
    for (const t of plan.before) await send(client, t, valuesOf(t, 0, undefined, now, plan.recordedNow, none));
    for (const orderId of orderIds) {
      const answers: (readonly Record<string, unknown>[])[] = [];
      for (const t of plan.perChange) answers.push((await send(client, t, valuesOf(t, orderId, plan.recordedOrderId, now, plan.recordedNow, answers))).rows);
    }
    for (const t of plan.after) await send(client, t, valuesOf(t, 0, undefined, now, plan.recordedNow, none));
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** `SELECT … FROM orders … FOR UPDATE`, `INSERT INTO journal … RETURNING`: what a statement is, in a few words; a simple query (BEGIN, NOTIFY …; COMMIT) as it is. */
function gist(t: Template): string {
  const text = t.text.replace(/\s+/g, ' ').trim();
  if (t.name === undefined) return text.length > 80 ? `${text.slice(0, 79)}…` : text;
  const head = /^(INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+|SELECT .*? FROM \w+|\w+)/i.exec(text)?.[1] ?? text;
  const tail = [/\bFOR UPDATE\b/i, /\bON CONFLICT\b/i, /\bRETURNING\b/i].filter((r) => r.test(text)).map((r) => r.source.replace(/\\b/g, ''));
  return [`${t.name}:`, head.replace(/^SELECT .*? FROM/i, 'SELECT … FROM'), ...tail].join(' ');
}

/** The plan in one line: `BEGIN; per change: …; COMMIT`. */
export function describePlan(plan: ReplayPlan): string {
  const list = (ts: readonly Template[]) => ts.map(gist).join(', ');
  return [list(plan.before), `per change: ${list(plan.perChange)}`, list(plan.after)].filter(Boolean).join('; ');
}
