// The run loop's small helpers: the doorbell it sleeps on when idle, and the bounded parallel
// runner its passes use. A loop that slept past a stop or a ring, or went on while calls of a
// failed pass still ran, would be wrong in ways the end-to-end suites see only by chance.

import { describe, expect, it } from 'vitest';
import { Doorbell, runConcurrently } from '../src/engine/concurrency.js';

/** Longer than any test: a wait that ran its time out instead of ending would time the test out. */
const NEVER_MS = 10 * 60_000;

describe('Doorbell', () => {
  it('a stop that came before the wait ends it at once', async () => {
    const stop = new AbortController();
    stop.abort();
    await new Doorbell().wait(NEVER_MS, stop.signal);
  }, 10_000);

  it('a ring while nobody waits is kept for the next wait, once', async () => {
    const doorbell = new Doorbell();
    doorbell.ring();
    await doorbell.wait(NEVER_MS, new AbortController().signal);
    // The ring was used up: the next wait sleeps until something happens.
    const stop = new AbortController();
    let ended = false;
    const waiting = doorbell.wait(NEVER_MS, stop.signal).then(() => (ended = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).toBe(false);
    stop.abort();
    await waiting;
  }, 10_000);

  it('a ring or a stop during the wait ends it', async () => {
    const doorbell = new Doorbell();
    const rung = doorbell.wait(NEVER_MS, new AbortController().signal);
    doorbell.ring();
    await rung;
    const stop = new AbortController();
    const stopped = doorbell.wait(NEVER_MS, stop.signal);
    stop.abort();
    await stopped;
  }, 10_000);
});

describe('runConcurrently', () => {
  it('after a failure starts nothing new, waits for the calls in flight, then rejects with the first failure', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    let releaseSlow!: () => void;
    const slow = new Promise<void>((resolve) => (releaseSlow = resolve));
    const run = runConcurrently([1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      if (n === 1) await slow;
      if (n === 2) throw new Error('the first failure');
      if (n === 3) throw new Error('a later one');
      finished.push(n);
    });
    let settled = false;
    void run.catch(() => {}).finally(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    // Item 1 is still running: the run has not settled, and nothing after the failure started.
    expect(settled).toBe(false);
    expect(started).toEqual([1, 2]);
    releaseSlow();
    await expect(run).rejects.toThrow('the first failure');
    expect(finished).toEqual([1]);
  }, 10_000);
});
