import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// The built package's three entry points, imported by name as a user would (self-reference).
describe('package exports', () => {
  it('ym-orders, ym-orders/machines and ym-orders/testing load from dist with their public names', () => {
    const script = `
      const core = await import('ym-orders');
      const machines = await import('ym-orders/machines');
      const testing = await import('ym-orders/testing');
      console.log(JSON.stringify({
        core: ['createEngine', 'ChangeRefusedError', 'StoreError', 'MarketAuthError', 'YmOrdersError'].filter((n) => typeof core[n] === 'function'),
        machines: ['orderMachine', 'operationMachine', 'explainTransition', 'toMermaid'].filter((n) => n in machines),
        statuses: machines.ORDER_STATUSES.length,
        substatuses: machines.ORDER_SUBSTATUSES.length,
        testing: typeof testing.startFakeMarket,
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      core: ['createEngine', 'ChangeRefusedError', 'StoreError', 'MarketAuthError', 'YmOrdersError'],
      machines: ['orderMachine', 'operationMachine', 'explainTransition', 'toMermaid'],
      statuses: 12,
      substatuses: 125,
      testing: 'function',
    });
  });

  it('ships type declarations for each entry point', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const fs = require('node:fs');
      const pkg = require('./package.json');
      console.log(JSON.stringify(Object.values(pkg.exports).filter((e) => typeof e === 'object').map((e) => fs.existsSync(e.types))));`], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([true, true, true]);
  });
});
