// Fault injection for the fake Market: per-test failures, optionally random from a seed,
// so a flaky-network test is reproducible.

import type { MarketOperation } from '../market/errors.js';

export const FAULT_KINDS = {
  /** Answer 500 without acting. */
  status500: 'status500',
  /** Answer 503 without acting. */
  status503: 'status503',
  /** Apply the request, then answer 500: a server error that is no proof the change did not happen. */
  status500AfterApply: 'status500AfterApply',
  /** Answer 420 LIMIT_EXCEEDED without acting (the quota is not touched). */
  status420: 'status420',
  /** Never answer (or answer normally after `delayMs`); nothing is applied before that. */
  hang: 'hang',
  /** Apply the request, then never answer (or answer after `delayMs`): the client times out, the Market acted. */
  timeoutAfterApply: 'timeoutAfterApply',
  /** Destroy the socket without acting. */
  drop: 'drop',
  /** Apply the request, then destroy the socket: the classic unknown outcome. */
  dropAfterApply: 'dropAfterApply',
  /** Apply the request, then answer with truncated JSON. */
  malformedJson: 'malformedJson',
  /** Apply the request, then answer about an order or operation id that was not asked about. */
  foreignIds: 'foreignIds',
} as const;
export type FaultKind = (typeof FAULT_KINDS)[keyof typeof FAULT_KINDS];

export interface Fault {
  kind: FaultKind;
  /** Only requests to this endpoint; all endpoints when absent. */
  endpoint?: MarketOperation;
  /** How many requests it hits before it is used up; default 1. `Infinity` until clearFaults(). */
  times?: number;
  /** Chance (0..1) that a matching request is hit, drawn from the seeded PRNG; default 1. */
  probability?: number;
  /** For `hang` and `timeoutAfterApply`: answer after this many ms instead of never. */
  delayMs?: number;
}

/** mulberry32: tiny, fast and good enough to make random faults reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultInjector {
  readonly #random: () => number;
  #faults: { fault: Fault; left: number }[] = [];

  constructor(seed: number) {
    this.#random = seededRandom(seed);
  }

  add(fault: Fault): void {
    this.#faults.push({ fault, left: fault.times ?? 1 });
  }

  clear(): void {
    this.#faults = [];
  }

  /** The fault that hits this request, if any; using it up counts down its `times`. */
  take(endpoint: MarketOperation): Fault | undefined {
    for (const entry of this.#faults) {
      if (entry.fault.endpoint !== undefined && entry.fault.endpoint !== endpoint) continue;
      if (entry.fault.probability !== undefined && this.#random() >= entry.fault.probability) continue;
      entry.left -= 1;
      if (entry.left <= 0) this.#faults = this.#faults.filter((e) => e !== entry);
      return entry.fault;
    }
    return undefined;
  }
}
