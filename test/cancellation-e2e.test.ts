// DBS cancellation answers end to end (issue #12): the buyer asks to cancel at the fake Market
// (loopback HTTP), sync() observes the request into a real SQLite file, and the engine answers it
// through acceptOrderCancellation: accept → the fake cancels the order; refuse → it stays. A lost
// answer is read back, never sent twice; the method's budget holds the rest back; the autoAccept
// policy answers a request whose deadline is near; the CLI lists and answers requests.

import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DBS_CANCELLATION_ANSWER_MS } from '../machines/order-machine.js';
import { main } from '../src/cli/main.js';
import { DEFAULT_ACCEPT_BEFORE_MS } from '../src/engine/cancellation-policy.js';
import type { Engine, EngineOptions } from '../src/engine/engine.js';
import { CancellationAnswerRefusedError, InvalidCommandError, InvalidOptionError } from '../src/engine/errors.js';
import type { FakeMarket } from '../src/testing/index.js';
import { API_KEY, DBS, FBS, engineFor, range, removeTempDirs, requestsTo, seeds, startMarket, tempDbPath } from './helpers/effects-fixtures.js';

/** The engine's and the fake's clock: real time, which a test may move ahead (the 48 h deadline). */
const clock = { offset: 0, now: (): number => Date.now() + clock.offset };

let market: FakeMarket;
const engines: Engine[] = [];

// A fake Market of its own per test: a sync reads only that test's orders.
beforeEach(async () => {
  market = await startMarket({ now: clock.now });
});
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  await market.close();
  clock.offset = 0;
});
afterAll(() => removeTempDirs());

let nextId = 7_100_000_001;
/** DBS orders in delivery whose buyers asked to cancel, at the fake. */
function ordersAskingToCancel(count: number): number[] {
  const ids = range(nextId, count);
  nextId += count;
  market.seedOrders(seeds(DBS, ids[0]!, count, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED', clock.now() - 60_000));
  for (const id of ids) market.requestCancellation(id);
  return ids;
}

async function engine(options: Partial<EngineOptions> = {}, db = tempDbPath()): Promise<Engine> {
  // No jitter: read-backs and retries come at once, so a flush settles in one go.
  const e = await engineFor(market, db, { clock: clock.now, random: () => 0, ...options });
  engines.push(e);
  return e;
}

const puts = (orderId: number) => requestsTo(market, 'acceptOrderCancellation').filter((r) => r.path.includes(`/orders/${orderId}/`));
const readsOf = (orderId: number) => requestsTo(market, 'getBusinessOrders').filter((r) => (r.body as { orderIds?: number[] } | undefined)?.orderIds?.includes(orderId));

describe('answering at the fake Market', () => {
  it('sync observes the request; accept → exactly one PUT, the fake cancels the order, the request and its deadline are gone', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine();
    await e.sync();
    const [open] = await e.openCancellations();
    expect(open).toMatchObject({ orderId: id, answer: null, answerState: 'unanswered', status: 'DELIVERY' });
    expect(open!.dueAt).toBe(open!.requestedAt + DBS_CANCELLATION_ANSWER_MS);
    expect(open!.timeLeftMs).toBeGreaterThan(DBS_CANCELLATION_ANSWER_MS - 3_600_000);

    const queued = await e.answerCancellation(id, { accepted: true });
    expect(queued).toMatchObject({ cancellation: 'queued', cancellationAnswer: { accepted: true, sends: 0 } });
    expect((await e.pendingChanges()).map((r) => [r.order_id, r.kind, r.status, r.substatus, r.payload])).toEqual([
      [id, 'cancellationAnswer', 'CANCELLATION_ANSWER', 'ACCEPTED', '{"accepted":true}'],
    ]);
    expect(puts(id)).toHaveLength(0);

    const report = await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(report.open).toBe(0);
    expect(report.counters.calls.acceptOrderCancellation).toBe(1);
    expect(puts(id).map((r) => [r.method, r.body, r.status])).toEqual([['PUT', { accepted: true }, 200]]);
    expect(market.getOrder(id)).toMatchObject({ status: 'CANCELLED', cancelRequested: false });
    const state = await e.getOrder(id);
    expect(state).toMatchObject({ cancellation: 'none', cancellationRequestedAt: null, cancellationAnswer: null, lastCancellationAnswer: { kind: 'accepted', accepted: true } });
    expect(await e.openCancellations()).toEqual([]);
    expect(await e.timers()).toEqual([]);
    // The status follows from the Market: the next sync reads the cancelled order.
    await e.sync();
    expect(await e.getOrder(id)).toMatchObject({ status: 'CANCELLED', cancellation: 'none' });
    expect(market.stats().illegalRequests).toBe(0);
  });

  it('refuse with a reason → the PUT carries it, the fake keeps the order in delivery, the request closes', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine();
    await e.sync();
    await e.answerCancellation(id, { accepted: false, reason: 'ORDER_IN_DELIVERY' });
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(puts(id).map((r) => r.body)).toEqual([{ accepted: false, reason: 'ORDER_IN_DELIVERY' }]);
    expect(market.getOrder(id)).toMatchObject({ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', cancelRequested: false });
    expect(await e.getOrder(id)).toMatchObject({
      status: 'DELIVERY',
      cancellation: 'none',
      lastCancellationAnswer: { kind: 'accepted', accepted: false, reason: 'ORDER_IN_DELIVERY' },
    });
    expect(await e.timers()).toEqual([]);
  });

  it('an answer whose response is lost (applied, then the socket dropped): read back, settled, exactly one PUT at the fake', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine();
    await e.sync();
    const readsBefore = readsOf(id).length;
    market.inject({ kind: 'dropAfterApply', endpoint: 'acceptOrderCancellation' });
    await e.answerCancellation(id, { accepted: true });
    const report = await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(report.open).toBe(0);
    expect(puts(id)).toHaveLength(1);
    expect(puts(id)[0]!.fault).toBe('dropAfterApply');
    expect(readsOf(id).length - readsBefore).toBe(1);
    expect(market.getOrder(id)).toMatchObject({ status: 'CANCELLED' });
    expect(market.stats().illegalRequests).toBe(0);
    const state = await e.getOrder(id);
    expect(state).toMatchObject({ cancellation: 'none', lastCancellationAnswer: { kind: 'accepted', message: expect.stringContaining('applied') } });
    const journal = (await e.history(id)).map((j) => j.event_type);
    expect(journal).toEqual(expect.arrayContaining(['SELLER.ANSWER_CANCELLATION', 'ANSWER.SENT', 'ANSWER.UNKNOWN', 'MARKET.OBSERVED']));
    expect(journal).not.toContain('ANSWER.ACCEPTED');
  });

  it('an answer lost before the Market acted: the read-back shows the request open, so it is sent once more and applied once', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine();
    await e.sync();
    market.inject({ kind: 'drop', endpoint: 'acceptOrderCancellation' });
    await e.answerCancellation(id, { accepted: false, reason: 'ORDER_DELIVERED' });
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(puts(id).map((r) => r.fault ?? 'answered')).toEqual(['drop', 'answered']);
    expect(market.stats().illegalRequests).toBe(0);
    expect(market.getOrder(id)).toMatchObject({ status: 'DELIVERY', cancelRequested: false });
    expect(await e.getOrder(id)).toMatchObject({ cancellation: 'none', lastCancellationAnswer: { kind: 'accepted', accepted: false } });
    const row = (await e.settledChanges({ state: 'accepted', since: 0 })).find((r) => r.order_id === id);
    expect(row).toMatchObject({ kind: 'cancellationAnswer', attempts: 2 });
  });

  it('a 400 from the Market: rejected with its words; the request stays open in the engine, for a person to answer', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    // A policy that would accept at once: it leaves a request whose answer the Market refused alone.
    const e = await engine({ cancellationPolicy: { mode: 'autoAccept', acceptBeforeMs: DBS_CANCELLATION_ANSWER_MS } });
    await e.sync();
    // The buyer's request ended at the Market in a way the engine has not seen yet: answering it is refused there.
    await e.trackOrders([{ orderId: id, campaignId: DBS.campaignId, status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', cancelRequested: true }]);
    market.seedOrders(seeds(DBS, id, 1, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED'));
    await e.answerCancellation(id, { accepted: true });
    const report = await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(report.open).toBe(0);
    expect(puts(id).map((r) => r.status)).toEqual([400]);
    const state = await e.getOrder(id);
    expect(state).toMatchObject({ cancellation: 'unanswered', lastCancellationAnswer: { kind: 'rejected', message: expect.stringContaining('no cancellation request is waiting') } });
    expect((await e.openCancellations()).map((c) => [c.orderId, c.lastAnswer?.kind])).toEqual([[id, 'rejected']]);
    expect(await e.answerDueCancellations()).toBe(0);
  });

  it('the acceptOrderCancellation budget: with 2 an hour, two answers go out and the rest wait for the window, still queued', async () => {
    // The Market's headers replace a configured budget with what it says it has left, so the fake
    // has the same budget: the engine holds to it before the first answer and after.
    await market.close();
    market = await startMarket({ now: clock.now, quotas: { acceptOrderCancellation: { limit: 2, windowMs: 3_600_000 } } });
    const ids = ordersAskingToCancel(5);
    const e = await engine({ limits: { resources: { acceptOrderCancellation: { limit: 2, windowMs: 3_600_000 } } } });
    await e.sync();
    for (const id of ids) await e.answerCancellation(id, { accepted: true });
    const report = await e.flush();
    const sent = ids.filter((id) => puts(id).length > 0);
    expect(sent).toHaveLength(2);
    expect(ids.filter((id) => market.getOrder(id)!.status === 'CANCELLED')).toEqual(sent);
    expect(report.outbox.queued).toBe(3);
    expect(report.waitingFor).toEqual(expect.arrayContaining([expect.objectContaining({ operation: 'acceptOrderCancellation', scope: { kind: 'campaign', id: DBS.campaignId }, reason: 'budget' })]));
    // Another pass within the window sends nothing more.
    await e.flush();
    expect(ids.filter((id) => puts(id).length > 0)).toEqual(sent);
    expect(market.stats().rateLimited).toBe(0);
    const waiting = ids.filter((id) => !sent.includes(id));
    for (const id of waiting) expect(await e.getOrder(id)).toMatchObject({ cancellation: 'queued' });
  });
});

describe('refused answers write nothing', () => {
  it('CANCELLATION_ANSWER_REFUSED with coded blockers (not DBS, not requested, reason missing, answer pending); INVALID_COMMAND for a malformed one', async () => {
    const [asked] = ordersAskingToCancel(1) as [number];
    const quiet = range(nextId++, 1)[0]!;
    market.seedOrders([...seeds(DBS, quiet, 1, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED'), ...seeds(FBS, quiet + 500_000, 1)]);
    const e = await engine();
    await e.sync();
    const refused = async (orderId: number, answer: Parameters<Engine['answerCancellation']>[1]) => {
      const before = await e.getOrder(orderId);
      const outbox = (await e.pendingChanges()).length;
      const error = await e.answerCancellation(orderId, answer).then(() => undefined, (x: unknown) => x);
      expect(error).toBeInstanceOf(CancellationAnswerRefusedError);
      expect(await e.getOrder(orderId)).toEqual(before);
      expect((await e.pendingChanges()).length).toBe(outbox);
      return (error as CancellationAnswerRefusedError).blockers.map((b) => b.code);
    };
    expect(await refused(quiet + 500_000, { accepted: true })).toEqual(['NOT_DBS']);
    expect(await refused(quiet, { accepted: true })).toEqual(['CANCELLATION_NOT_REQUESTED']);
    expect(await refused(asked, { accepted: false })).toEqual(['CANCELLATION_REASON_REQUIRED']);
    await e.answerCancellation(asked, { accepted: true });
    expect(await refused(asked, { accepted: false, reason: 'ORDER_DELIVERED' })).toEqual(['CANCELLATION_ANSWER_PENDING']);
    await expect(e.answerCancellation(asked, { accepted: 'yes' } as never)).rejects.toBeInstanceOf(InvalidCommandError);
    await expect(e.answerCancellation(asked, { accepted: false, reason: 'order delivered' } as never)).rejects.toMatchObject({ code: 'INVALID_COMMAND' });
  });
});

describe('the cancellation policy', () => {
  it('autoAccept answers a request once its deadline is within acceptBeforeMs, and only once', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine({ cancellationPolicy: { mode: 'autoAccept' } });
    await e.sync();
    expect(await e.answerDueCancellations()).toBe(0);
    expect(await e.getOrder(id)).toMatchObject({ cancellation: 'unanswered' });
    // 46 h and a minute later: less than two hours left.
    const { dueAt } = (await e.openCancellations())[0]!;
    clock.offset = dueAt - DEFAULT_ACCEPT_BEFORE_MS + 60_000 - Date.now();
    expect(await e.answerDueCancellations()).toBe(1);
    expect(await e.answerDueCancellations()).toBe(0);
    expect(await e.getOrder(id)).toMatchObject({ cancellation: 'queued', cancellationAnswer: { accepted: true } });
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(puts(id)).toHaveLength(1);
    expect(market.getOrder(id)).toMatchObject({ status: 'CANCELLED' });
  });

  it('autoAccept needs no call of its own: a flush near the deadline queues the accept and sends it in the same round; far from it, nothing', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine({ cancellationPolicy: { mode: 'autoAccept' } });
    await e.sync();
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(puts(id)).toHaveLength(0);
    const { dueAt } = (await e.openCancellations())[0]!;
    clock.offset = dueAt - DEFAULT_ACCEPT_BEFORE_MS + 60_000 - Date.now();
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(puts(id)).toHaveLength(1);
    expect(market.getOrder(id)).toMatchObject({ status: 'CANCELLED' });
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(puts(id)).toHaveLength(1);
  });

  it('report mode: a flush at the deadline\'s edge sends nothing', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine();
    await e.sync();
    clock.offset = DBS_CANCELLATION_ANSWER_MS - 60_000;
    await e.flush({ untilIdle: true, maxWaitMs: 20_000 });
    expect(puts(id)).toHaveLength(0);
    expect(await e.getOrder(id)).toMatchObject({ cancellation: 'unanswered' });
  });

  it('report mode (the default) answers nothing, however near the deadline; a bad policy is INVALID_OPTION', async () => {
    const [id] = ordersAskingToCancel(1) as [number];
    const e = await engine();
    await e.sync();
    clock.offset = DBS_CANCELLATION_ANSWER_MS - 60_000;
    expect(await e.answerDueCancellations()).toBe(0);
    expect(await e.getOrder(id)).toMatchObject({ cancellation: 'unanswered' });
    expect((await e.openCancellations()).find((c) => c.orderId === id)!.timeLeftMs).toBeLessThan(DEFAULT_ACCEPT_BEFORE_MS);
    await expect(engine({ cancellationPolicy: { mode: 'autoRefuse' as never } })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(engine({ cancellationPolicy: { mode: 'autoAccept', acceptBeforeMs: -1 } })).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('cancellationPolicy.acceptBeforeMs') });
  });
});

describe('ym-orders cancellations / cancellation accept|reject', () => {
  async function cli(db: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const sink = (append: (s: string) => void) => new Writable({ write: (chunk, _encoding, done) => (append(String(chunk)), done()) });
    const code = await main(['--db', db, '--api-url', market.url, '--campaign', `${DBS.campaignId}:${DBS.businessId}:DBS`, ...args], {
      stdin: Readable.from([]),
      stdout: sink((s) => (stdout += s)),
      stderr: sink((s) => (stderr += s)),
      env: { YM_API_KEY: API_KEY },
      cwd: path.dirname(db),
    });
    return { code, stdout, stderr };
  }

  it('lists open requests with the time left, accepts one with --flush, refuses one without a reason (exit 2) or when not asked (exit 1)', async () => {
    const [a, b] = ordersAskingToCancel(2) as [number, number];
    const db = tempDbPath();
    expect((await cli(db, ['sync'])).code).toBe(0);

    const listed = await cli(db, ['cancellations']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`order ${a} .*DELIVERY/DELIVERY_SERVICE_RECEIVED .*answer by .* (47h 5\\dm|4[78]h \\d+m) left .*unanswered`));
    const json = JSON.parse((await cli(db, ['cancellations', '--json'])).stdout) as { open: { orderId: number; timeLeftMs: number }[] };
    expect(json.open.map((o) => o.orderId).sort()).toEqual([a, b]);

    const accepted = await cli(db, ['cancellation', 'accept', String(a), '--flush']);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stdout).toContain(`order ${a}: answer to accept sent`);
    expect(market.getOrder(a)).toMatchObject({ status: 'CANCELLED' });

    const noReason = await cli(db, ['cancellation', 'reject', String(b)]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toMatch(/error \[USAGE\]: reject needs --reason ORDER_DELIVERED or ORDER_IN_DELIVERY/);

    const queued = await cli(db, ['--json', 'cancellation', 'reject', String(b), '--reason', 'order_in_delivery']);
    expect(queued.code).toBe(0);
    expect(JSON.parse(queued.stdout)).toMatchObject({ orderId: b, cancellation: 'queued', pending: { accepted: false, reason: 'ORDER_IN_DELIVERY' } });
    expect(puts(b)).toHaveLength(0);

    const notAsked = await cli(db, ['cancellation', 'accept', String(a)]);
    expect(notAsked.code).toBe(1);
    expect(notAsked.stdout).toContain('[CANCELLATION_NOT_REQUESTED]');
    expect(notAsked.stderr).toMatch(/error \[CHANGE_REFUSED\]: Order \d+: cannot accept/);

    expect((await cli(db, ['flush'])).code).toBe(0);
    expect(puts(b).map((r) => r.body)).toEqual([{ accepted: false, reason: 'ORDER_IN_DELIVERY' }]);
    expect((await cli(db, ['cancellations'])).stdout).toContain('no open cancellation requests');
  });
});
