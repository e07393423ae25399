// Benchmark 6: the PostgreSQL store (issue 11, "Numbers"; issue 14, goal 3). 6a: persisted
// transitions against raw driver calls doing the adapter's statements (postgres-bulk.ts). 6b: 1, 2
// and 4 run-loop processes sharing one schema and one fake Market (postgres-processes.ts).
// Skipped, with one line saying so, when no server answers (bench/lib/postgres.ts for the URL).

import { BENCH_POSTGRES_URL, dropSchemas, freshSchemaPrefix, postgresAnswers, postgresSkipLine } from './lib/postgres.js';
import type { Row } from './lib/report.js';
import * as bulk from './postgres-bulk.js';
import * as processes from './postgres-processes.js';

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const url = BENCH_POSTGRES_URL;
  if (!(await postgresAnswers(url))) {
    console.error(`  ${postgresSkipLine(url)}`);
    return [];
  }
  const schemaPrefix = freshSchemaPrefix();
  try {
    return [...(await bulk.run({ quick: options.quick, url, schemaPrefix })), ...(await processes.run({ quick: options.quick, url, schemaPrefix }))];
  } finally {
    await dropSchemas(schemaPrefix, url);
  }
}
