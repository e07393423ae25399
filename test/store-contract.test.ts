// The store contract (test/helpers/store-contract.ts) against the SQLite adapter: on a file,
// reopened where the suite asks, and in memory.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../src/store/index.js';
import { describeStoreContract } from './helpers/store-contract.js';

describeStoreContract('SQLite file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ym-orders-contract-'));
  const file = path.join(dir, 'store.db');
  // NORMAL: the suite runs thousands of transactions, and durability is the adapter test's to check.
  const options = { synchronous: 'NORMAL', now: 0 } as const;
  return {
    store: SqliteStore.open(file, options),
    reopen: async () => SqliteStore.open(file, options),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}, { leaseClock: 'caller' });

describeStoreContract(
  'SQLite :memory:',
  async () => ({
    store: SqliteStore.open(':memory:', { now: 0 }),
    cleanup: async () => {},
  }),
  { leaseClock: 'caller' },
);
