// The PostgreSQL server the PostgreSQL benchmarks run against: YM_BENCH_POSTGRES_URL, else the
// tests' server (test/helpers/postgres.ts: YM_TEST_POSTGRES_URL, else the local one). Schemas are
// named and dropped with the tests' helpers (ym_test_<random>…), so a run that was killed leaves
// nothing that a test run's cleanup would not recognise.

import { redactUrl } from '../../src/store/open-store.js';
import { POSTGRES_TEST_URL } from '../../test/helpers/postgres.js';

export { dropSchemas, freshSchemaPrefix, postgresAnswers } from '../../test/helpers/postgres.js';

export const BENCH_POSTGRES_URL = process.env.YM_BENCH_POSTGRES_URL || POSTGRES_TEST_URL;

export function postgresSkipLine(url: string = BENCH_POSTGRES_URL): string {
  return `PostgreSQL benchmarks skipped: no server answers at ${redactUrl(url)} (set YM_BENCH_POSTGRES_URL=postgres://user:pass@host:port/db to run them)`;
}
