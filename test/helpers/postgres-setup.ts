// Vitest's global setup: asks once whether the PostgreSQL test server answers, says so in one line
// when it does not (or fails the run when CI requires it), and hands the answer to every test file.

import type { TestProject } from 'vitest/node';
import { POSTGRES_TEST_URL, postgresAnswers, requirePostgres, skipLine } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: boolean;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const answers = await postgresAnswers(POSTGRES_TEST_URL);
  if (!answers) {
    requirePostgres(POSTGRES_TEST_URL);
    console.log(skipLine(POSTGRES_TEST_URL));
  }
  project.provide('postgres', answers);
}
