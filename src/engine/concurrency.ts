// Small async helpers for the effects layer.

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects: the caller checks the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight. After a failure no new call
 * starts; it rejects with the first failure once the calls in flight have ended, so a caller that
 * goes on (a run loop retrying) never has calls of the failed pass still running beside its next.
 */
export async function runConcurrently<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failure) throw failure.error;
}

/**
 * What an idle loop sleeps on: wait() ends after `ms`, when `signal` aborts, or when ring() is
 * called. A ring while nobody waits is kept for the next wait, so work queued during a pass is
 * not slept past.
 */
export class Doorbell {
  #rung = false;
  #wake: (() => void) | undefined;

  ring(): void {
    this.#rung = true;
    this.#wake?.();
  }

  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (!this.#rung && !signal.aborted) {
      const woken = new AbortController();
      const wake = () => woken.abort();
      this.#wake = wake;
      signal.addEventListener('abort', wake, { once: true });
      await sleep(ms, woken.signal);
      signal.removeEventListener('abort', wake);
      this.#wake = undefined;
    }
    this.#rung = false;
  }
}

/**
 * `items` in the order their orders are locked: ascending order id, ties kept as they were.
 * Every transaction that changes several orders takes their row locks in this one order, so two
 * of them (in any processes) never wait on each other in a circle, a deadlock PostgreSQL would
 * end by failing one of them whole.
 */
export function inLockOrder<T>(items: readonly T[], orderIdOf: (item: T) => number): T[] {
  return [...items].sort((a, b) => orderIdOf(a) - orderIdOf(b));
}
