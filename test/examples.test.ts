import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// The README's library example must run as printed, against the built package.
describe('examples/quickstart.mjs', () => {
  it('ships, cancels, refuses an illegal change and prints the history', () => {
    const out = execFileSync(process.execPath, ['examples/quickstart.mjs'], { encoding: 'utf8', timeout: 30_000 });
    expect(out).toContain('refused 3: NOT_FROM_CURRENT_STATE');
    expect(out).toContain('status-update calls: 1');
    expect(out).toContain('order 1: PROCESSING/READY_TO_SHIP (accepted)');
    expect(out).toContain('order 2: CANCELLED/SHOP_FAILED (accepted)');
    expect(out).toContain('order 3: DELIVERY/DELIVERY_SERVICE_RECEIVED (no change)');
    expect(out).toMatch(/DISPATCH\.ACCEPTED: PROCESSING\/READY_TO_SHIP idle/);
  });
});
