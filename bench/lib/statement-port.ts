// The port calls behind the adapter's statements: what the engine asked the store for in a batch
// of changes, recorded and replayed for other orders without the engine. Bench 6a puts this
// replay beside the engine and the raw-driver replay (statement-replay.ts), so one run tells the
// adapter's own cost (port call → SQL, against raw SQL) from the engine's (request → port calls).
//
// recordingStore wraps a Store: while `record` runs, every call on a transaction's tables is kept
// with its arguments and its answer. planPortReplay turns a recording of two changes, A then B, at
// time T, into a template of one change by the same rules as statement-replay.ts: a value that is
// A becomes the order's id, T the batch's time, a string holding either has them replaced, a
// number an earlier call of the change answered (the journal's seq, the row version read) is taken
// from that call's answer in the replay, anything else is sent as recorded. The template must
// rebuild B's calls exactly, and each replayed call must answer as the adapter's did (the same
// boolean, a row where there was a row), or the plan is refused.

import { isDeepStrictEqual } from 'node:util';
import type { Store, StoreTx } from '../../src/store/port.js';
import { plainTemplateOf, plainValueOf, type PlainValue, type Substitution } from './value-template.js';

export interface PortCall {
  readonly table: keyof StoreTx;
  readonly method: string;
  readonly args: readonly unknown[];
  answer: unknown;
}

type Value =
  | PlainValue
  | { readonly kind: 'returned'; readonly call: number; readonly field: string | undefined }
  | { readonly kind: 'object'; readonly entries: readonly (readonly [string, Value])[] };

interface CallTemplate {
  readonly table: keyof StoreTx;
  readonly method: string;
  readonly args: readonly Value[];
  /** What the adapter answered, as a shape the replay must match: a boolean as it was, else its kind. */
  readonly answer: boolean | 'row' | 'rows' | 'number' | 'none';
}

export interface PortReplayPlan {
  readonly perChange: readonly CallTemplate[];
  readonly recordedOrderId: number;
  readonly recordedNow: number;
}

export class PortReplayPlanError extends Error {
  readonly code = 'BENCH_PORT_REPLAY_PLAN';
}

function answerShape(answer: unknown): CallTemplate['answer'] {
  if (typeof answer === 'boolean') return answer;
  if (typeof answer === 'number') return 'number';
  if (Array.isArray(answer)) return 'rows';
  if (answer !== null && typeof answer === 'object') return 'row';
  return 'none';
}

function wrapTx(tx: StoreTx, calls: PortCall[]): StoreTx {
  const wrapped: Record<string, unknown> = {};
  for (const table of Object.keys(tx) as (keyof StoreTx)[]) {
    const target = tx[table] as unknown as Record<string, unknown>;
    wrapped[table] = new Proxy(target, {
      get(obj, method: string) {
        const member = Reflect.get(obj, method, obj) as unknown;
        if (typeof member !== 'function') return member;
        return async (...args: unknown[]) => {
          const call: PortCall = { table, method, args: structuredClone(args), answer: undefined };
          calls.push(call);
          const answer: unknown = await (member as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
          call.answer = structuredClone(answer);
          return answer;
        };
      },
    });
  }
  return wrapped as unknown as StoreTx;
}

/** `store` as it is, except that the transactions begun while `record` runs have their port calls kept. */
export function recordingStore(store: Store): { store: Store; record<T>(fn: () => Promise<T>): Promise<{ value: T; calls: PortCall[] }> } {
  let calls: PortCall[] | undefined;
  const recording: Store = {
    name: store.name,
    wakeups: store.wakeups,
    onQueued: (listener) => store.onQueued(listener),
    transaction: (fn) => store.transaction((tx) => fn(calls ? wrapTx(tx, calls) : tx)),
    read: (fn) => store.read(fn),
    close: () => store.close(),
  };
  return {
    store: recording,
    async record<T>(fn: () => Promise<T>) {
      const kept: PortCall[] = [];
      calls = kept;
      try {
        return { value: await fn(), calls: kept };
      } finally {
        calls = undefined;
      }
    },
  };
}

function mentions(value: unknown, orderId: number): boolean {
  if (value === orderId) return true;
  if (typeof value === 'string') return value.includes(String(orderId));
  if (Array.isArray(value)) return value.some((v) => mentions(v, orderId));
  if (value !== null && typeof value === 'object') return Object.values(value).some((v) => mentions(v, orderId));
  return false;
}

function templateOfValue(v: unknown, orderId: number, now: number, earlier: readonly PortCall[]): Value {
  const plain = plainTemplateOf(v, orderId, now);
  if (plain !== undefined) return plain;
  if (typeof v === 'number') {
    for (const [k, call] of earlier.entries()) {
      if (call.answer === v) return { kind: 'returned', call: k, field: undefined };
      if (call.answer !== null && typeof call.answer === 'object' && !Array.isArray(call.answer)) {
        const field = Object.entries(call.answer).find(([, answered]) => answered === v)?.[0];
        if (field !== undefined) return { kind: 'returned', call: k, field };
      }
    }
  }
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { kind: 'object', entries: Object.entries(v).map(([key, x]) => [key, templateOfValue(x, orderId, now, earlier)] as const) };
  return { kind: 'recorded', value: v };
}

/** The value `v` stands for in the replay `substitution`; `answers` are those of the change's earlier calls. */
function valueOf(v: Value, substitution: Substitution, answers: readonly unknown[]): unknown {
  switch (v.kind) {
    case 'returned': {
      const answer = answers[v.call];
      return v.field === undefined ? answer : (answer as Record<string, unknown> | undefined)?.[v.field];
    }
    case 'object':
      return Object.fromEntries(v.entries.map(([key, x]) => [key, valueOf(x, substitution, answers)]));
    default:
      return plainValueOf(v, substitution);
  }
}

/** The recording: two changes, `orderIds` [A, B] in that order, made at `now`, each call naming its order. */
export function planPortReplay(recording: { readonly calls: readonly PortCall[]; readonly orderIds: readonly [number, number]; readonly now: number }): PortReplayPlan {
  const [a, b] = recording.orderIds;
  const all = recording.calls;
  const refuse = (why: string) => new PortReplayPlanError(`cannot replay the engine's port calls (${all.map((c) => `${c.table}.${c.method}`).join(', ')}): ${why}`);
  const ofA = all.flatMap((c, i) => (mentions(c.args, a) ? [i] : []));
  const ofB = all.flatMap((c, i) => (mentions(c.args, b) ? [i] : []));
  if (ofA.length === 0 || ofB.length === 0) throw refuse('no call names one of the two orders');
  // Every call of the transaction belongs to one change: a call for the batch would need a place in the template.
  if (ofA.length + ofB.length !== all.length || ofA.at(-1)! + 1 !== ofB[0]) throw refuse('a call names neither order or both, or the changes interleave');
  const blockA = all.slice(0, ofA.length);
  const blockB = all.slice(ofA.length);
  if (blockA.length !== blockB.length) throw refuse(`the changes made ${blockA.length} and ${blockB.length} calls`);
  const perChange: CallTemplate[] = blockA.map((call, j) => ({
    table: call.table,
    method: call.method,
    args: call.args.map((v) => templateOfValue(v, a, recording.now, blockA.slice(0, j))),
    answer: answerShape(call.answer),
  }));
  const answersB = blockB.map((c) => c.answer);
  const asB: Substitution = { orderId: b, recordedOrderId: a, now: recording.now, recordedNow: recording.now };
  for (const [j, call] of blockB.entries()) {
    const t = perChange[j]!;
    const rebuilt = t.args.map((v) => valueOf(v, asB, answersB));
    if (call.table !== t.table || call.method !== t.method || !isDeepStrictEqual(rebuilt, call.args)) {
      throw refuse(`call ${j + 1} for the second order (${call.table}.${call.method}) is not the first order's with its id: sent ${JSON.stringify(call.args)}, the template gives ${JSON.stringify(rebuilt)}`);
    }
    if (answerShape(call.answer) !== t.answer) throw refuse(`${call.table}.${call.method} answered ${JSON.stringify(t.answer)} for one order and ${JSON.stringify(answerShape(call.answer))} for the other`);
  }
  return { perChange, recordedOrderId: a, recordedNow: recording.now };
}

/**
 * One transaction of `store`, the plan's calls for each of `orderIds` at `now`, each awaited
 * before the next as the engine does; each must answer as the adapter did when recorded.
 */
export function replayPort(store: Store, plan: PortReplayPlan, orderIds: readonly number[], now: number): Promise<void> {
  return store.transaction(async (tx) => {
    for (const orderId of orderIds) {
      const substitution: Substitution = { orderId, recordedOrderId: plan.recordedOrderId, now, recordedNow: plan.recordedNow };
      const answers: unknown[] = [];
      for (const t of plan.perChange) {
        const table = tx[t.table] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
        const answer = await table[t.method]!(...t.args.map((v) => valueOf(v, substitution, answers)));
        if (answerShape(answer) !== t.answer) throw new PortReplayPlanError(`replayed ${t.table}.${t.method} for order ${orderId}: answered ${JSON.stringify(answerShape(answer))}, the adapter answered ${JSON.stringify(t.answer)}`);
        answers.push(answer);
      }
    }
  });
}

/** `orders.get, orders.update, …`: the calls of one change. */
export function describePortPlan(plan: PortReplayPlan): string {
  return plan.perChange.map((t) => `${t.table}.${t.method}`).join(', ');
}
