// The `ym-orders` binary, run as a child process against a fake Market on loopback:
// import, ship, cancel, set-status, flush, sync, status, history, graph, usage errors, and
// the API key never printed or stored.

import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeMarket, type FakeMarket, type FakeOrderSeed } from '../src/testing/index.js';
import { main } from '../src/cli/main.js';
import { demoFailure, demoJson, describeDemo } from '../src/cli/demo/report.js';
import { runDemo } from '../src/cli/demo/run.js';
import { Output } from '../src/cli/output.js';
import { createEngine } from '../src/engine/engine.js';
import { ensureBuilt, filesContaining, json, killRunning, makeTempDir, runCli, TEST_API_KEY, transcript, writeForeignDatabase, type CliResult } from './helpers/cli.js';

const FBS = { campaignId: 101, businessId: 11, model: 'FBS' } as const;
const EXPRESS = { campaignId: 102, businessId: 11, model: 'EXPRESS' } as const;
const DBS = { campaignId: 203, businessId: 22, model: 'DBS' } as const;
const LAAS = { campaignId: 304, businessId: 33, model: 'LAAS' } as const;
const CAMPAIGNS = [FBS, EXPRESS, DBS, LAAS];
const CAMPAIGN_FLAGS = CAMPAIGNS.flatMap((c) => ['--campaign', `${c.campaignId}:${c.businessId}:${c.model}`]);

let market: FakeMarket;
const dirs: string[] = [];
let nextId = 7_000_000_001;

beforeAll(async () => {
  await ensureBuilt();
  market = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: CAMPAIGNS, operationDelayMs: 50 });
});

afterAll(async () => {
  killRunning();
  await market?.close();
  try {
    // Every byte printed by every child of this file, and every database file written. The
    // children ran with the key (the fake Market answers no other), so it was there to leak.
    expect(transcript.length).toBeGreaterThan(0);
    for (const text of transcript) expect(text).not.toContain(TEST_API_KEY);
    const databases = dirs.flatMap((d) => fs.readdirSync(d).filter((f) => f.endsWith('.db')));
    expect(databases.length).toBeGreaterThan(0);
    for (const d of dirs) expect(filesContaining(d, TEST_API_KEY)).toEqual([]);
    // And the scan does find the key where it is.
    const canary = path.join(dirs[0]!, 'canary.bin');
    fs.writeFileSync(canary, `before${TEST_API_KEY}after`);
    expect(filesContaining(dirs[0]!, TEST_API_KEY)).toEqual([canary]);
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});

function tempDir(): string {
  const d = makeTempDir();
  dirs.push(d);
  return d;
}

/** Seeds orders at the fake Market and returns them. */
function seed(campaign: { campaignId: number }, n: number, status: string, substatus: string): FakeOrderSeed[] {
  const orders = Array.from({ length: n }, () => ({ id: nextId++, campaignId: campaign.campaignId, status, substatus, updateDate: Date.now() - 60_000 }));
  market.seedOrders(orders);
  return orders;
}

function jsonl(orders: readonly FakeOrderSeed[]): string {
  return orders.map((o) => JSON.stringify({ orderId: o.id, campaignId: o.campaignId, status: o.status, substatus: o.substatus })).join('\n') + '\n';
}

/** A database (in a fresh dir) that tracks `orders`, imported through the CLI. */
async function dbWith(orders: readonly FakeOrderSeed[]): Promise<{ dir: string; cli: (args: string[], input?: string) => Promise<CliResult> }> {
  const dir = tempDir();
  const file = path.join(dir, 'orders.jsonl');
  fs.writeFileSync(file, jsonl(orders));
  const base = ['--db', path.join(dir, 'test.db'), '--api-url', market.url];
  const first = await runCli([...base, ...CAMPAIGN_FLAGS, 'import', file]);
  expect(first.code, first.stderr).toBe(0);
  return { dir, cli: (args, input) => runCli([...base, ...args], input === undefined ? {} : { input }) };
}

describe('import', () => {
  it('imports JSON Lines, and status shows the orders by status', async () => {
    const orders = [...seed(FBS, 3, 'PROCESSING', 'STARTED'), ...seed(DBS, 2, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED')];
    const { cli } = await dbWith(orders);
    const human = await cli(['status']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/5 order\(s\)/);
    expect(human.stdout).toMatch(/PROCESSING\/STARTED\s+3/);
    const doc = json<{ orders: number; statuses: { status: string; substatus: string; count: number }[] }>(await cli(['status', '--json']));
    expect(doc.orders).toBe(5);
    expect(doc.statuses).toContainEqual(expect.objectContaining({ status: 'DELIVERY', substatus: 'DELIVERY_SERVICE_RECEIVED', count: 2 }));
  });

  it('imports CSV with a header, Market and ISO dates, and from stdin', async () => {
    const dir = tempDir();
    const [a, b] = seed(FBS, 2, 'PROCESSING', 'STARTED');
    const csv = `orderId,campaignId,status,substatus,updatedAt\n${a!.id},101,PROCESSING,STARTED,23-09-2022 09:12:41\n${b!.id},101,PROCESSING,READY_TO_SHIP,2022-09-23T09:12:41+03:00\n`;
    fs.writeFileSync(path.join(dir, 'orders.csv'), csv);
    const db = ['--db', path.join(dir, 'x.db')];
    const imported = await runCli([...db, ...CAMPAIGN_FLAGS, 'import', path.join(dir, 'orders.csv')]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/imported 2 order\(s\).*2 new/);
    // Headerless CSV from stdin; the campaigns are remembered in the database now.
    const [c] = seed(EXPRESS, 1, 'PROCESSING', 'STARTED');
    const piped = await runCli([...db, 'import', '-', '--json'], { input: `${c!.id},102,PROCESSING,STARTED\n` });
    expect(json(piped)).toMatchObject({ source: 'stdin', orders: 1, created: 1 });
    const one = json<{ status: string; substatus: string; model: string }>(await runCli([...db, 'status', String(b!.id), '--json']));
    expect(one).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP', model: 'FBS' });
  });

  it('refuses a bad file with the bad lines and imports nothing (exit 2)', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'bad.jsonl'), '{"orderId":1,"campaignId":101,"status":"PROCESSING","substatus":"STARTED"}\n{"orderId":"x","campaignId":101,"status":"processing"}\nnot json\n');
    const db = ['--db', path.join(dir, 'x.db'), ...CAMPAIGN_FLAGS];
    const bad = await runCli([...db, 'import', path.join(dir, 'bad.jsonl')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error \[INPUT_INVALID\]: .*2 bad line/m);
    expect(bad.stderr).toMatch(/line 2: orderId "x" is not a positive integer/);
    expect(bad.stderr).toMatch(/line 3: not a JSON object/);
    const missing = await runCli([...db, 'import', path.join(dir, 'nope.csv')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error \[FILE_UNREADABLE\]: Cannot read order file .*no such file/m);
    const unknownCampaign = await runCli(['--db', path.join(dir, 'y.db'), 'import', '-'], { input: '5,999,PROCESSING,STARTED\n' });
    expect(unknownCampaign.code).toBe(2);
    expect(unknownCampaign.stderr).toMatch(/^error \[CAMPAIGN_UNKNOWN\]: Campaign 999/m);
  });
});

describe('ship, cancel, set-status and flush', () => {
  it('ship queues READY_TO_SHIP and flush sends it in one bulk call', async () => {
    const orders = seed(FBS, 4, 'PROCESSING', 'STARTED');
    const { cli } = await dbWith(orders);
    const shipped = await cli(['ship', ...orders.map((o) => String(o.id))]);
    expect(shipped.code, shipped.stderr).toBe(0);
    expect(shipped.stdout).toMatch(/queued 4 change\(s\) to PROCESSING\/READY_TO_SHIP/);
    expect(market.getOrder(orders[0]!.id)?.substatus).toBe('STARTED'); // queued, not sent
    const before = market.stats().requestsByEndpoint.updateOrderStatuses;
    const flushed = await cli(['flush', '--json']);
    expect(flushed.code, flushed.stderr).toBe(0);
    const report = json<{ open: number; counters: { accepted: number; calls: Record<string, number> } }>(flushed);
    expect(report).toMatchObject({ open: 0, counters: { accepted: 4, calls: { updateOrderStatuses: 1 } } });
    expect(market.stats().requestsByEndpoint.updateOrderStatuses - before).toBe(1);
    for (const o of orders) expect(market.getOrder(o.id)).toMatchObject({ status: 'PROCESSING', substatus: 'READY_TO_SHIP' });
    const one = json<{ change: string; lastOutcome: { kind: string } }>(await cli(['status', String(orders[0]!.id), '--json']));
    expect(one).toMatchObject({ change: 'idle', lastOutcome: { kind: 'accepted' } });
  });

  it('cancel takes ids from --file and stdin, with a reason; LaaS cancellations finish as operations', async () => {
    const fbs = seed(FBS, 2, 'PROCESSING', 'READY_TO_SHIP');
    const laas = seed(LAAS, 2, 'PROCESSING', 'STARTED');
    const { dir, cli } = await dbWith([...fbs, ...laas]);
    fs.writeFileSync(path.join(dir, 'ids.txt'), `# packed but out of stock\n${fbs[0]!.id}\n${fbs[1]!.id}, ${laas[0]!.id}\n`);
    const fromFile = await cli(['cancel', '--file', path.join(dir, 'ids.txt')]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toMatch(/queued 3 change\(s\) to CANCELLED\/SHOP_FAILED/);
    const fromStdin = await cli(['cancel', '--reason', 'shop_failed', '--json'], `${laas[1]!.id}\n`);
    expect(json(fromStdin)).toMatchObject({ target: { status: 'CANCELLED', substatus: 'SHOP_FAILED' }, refused: [] });
    const flushed = await cli(['flush']);
    expect(flushed.code, flushed.stderr).toBe(0);
    expect(flushed.stdout).toMatch(/flushed 4 open change\(s\) in .*: 4 accepted, 0 rejected, 0 still open/);
    expect(flushed.stdout).toMatch(/2 async operation\(s\) started/);
    for (const o of [...fbs, ...laas]) expect(market.getOrder(o.id)).toMatchObject({ status: 'CANCELLED', substatus: 'SHOP_FAILED' });
    expect((await cli(['status'])).stdout).toMatch(/operations: done 2/);
  });

  it('set-status sends a DBS delivery with realDeliveryDate by the single PUT, and checks call evidence', async () => {
    const [delivery, started] = [seed(DBS, 1, 'DELIVERY', 'DELIVERY_SERVICE_RECEIVED')[0]!, seed(DBS, 1, 'PROCESSING', 'STARTED')[0]!];
    const { dir, cli } = await dbWith([delivery, started]);
    const yesterday = new Date(Date.now() - 86_400_000 + 3 * 3_600_000).toISOString().slice(0, 10);
    const queued = await cli(['set-status', String(delivery.id), 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED', '--real-delivery-date', yesterday]);
    expect(queued.code, queued.stderr).toBe(0);
    const weak = { buyerTimeZone: 'Europe/Moscow', calls: [{ startedAt: '2025-05-12T10:00:00+03:00', connectedSeconds: 7 }] };
    fs.writeFileSync(path.join(dir, 'weak.json'), JSON.stringify(weak));
    const refused = await cli(['set-status', String(started.id), 'CANCELLED', 'USER_UNREACHABLE', '--call-evidence', path.join(dir, 'weak.json')]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/\[CALL_EVIDENCE_INSUFFICIENT\] Only 1 call\(s\) qualify/);
    const strong = { buyerTimeZone: 'Europe/Moscow', calls: ['10:00', '11:00', '12:00'].map((t) => ({ startedAt: `2025-05-12T${t}:00+03:00`, connectedSeconds: 7 })) };
    fs.writeFileSync(path.join(dir, 'strong.json'), JSON.stringify(strong));
    const ok = await cli(['set-status', String(started.id), 'CANCELLED', 'USER_UNREACHABLE', '--call-evidence', path.join(dir, 'strong.json'), '--flush']);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    const flushed = await cli(['flush', '--json']);
    expect(json(flushed)).toMatchObject({ open: 0 });
    expect(market.getOrder(delivery.id)).toMatchObject({ status: 'DELIVERED', substatus: 'DELIVERY_SERVICE_DELIVERED', realDeliveryDate: yesterday });
    expect(market.getOrder(started.id)).toMatchObject({ status: 'CANCELLED', substatus: 'USER_UNREACHABLE' });
    expect(market.requests.some((r) => r.method === 'PUT' && r.path.endsWith(`/orders/${delivery.id}/status`))).toBe(true);
  });

  it('an illegal ship exits 1 with the blocker codes and nothing is sent', async () => {
    const [delivered] = seed(FBS, 1, 'DELIVERED', 'DELIVERY_SERVICE_DELIVERED');
    const [laas] = seed(LAAS, 1, 'PROCESSING', 'STARTED');
    const [good] = seed(FBS, 1, 'PROCESSING', 'STARTED');
    const { cli } = await dbWith([delivered!, laas!, good!]);
    const shipped = await cli(['ship', String(delivered!.id), String(laas!.id), '--all-or-nothing']);
    expect(shipped.code).toBe(1);
    expect(shipped.stdout).toMatch(new RegExp(`order ${delivered!.id} \\(DELIVERED/DELIVERY_SERVICE_DELIVERED\\): refused`));
    expect(shipped.stdout).toMatch(/\[TERMINAL_STATE\] The order is DELIVERED\/DELIVERY_SERVICE_DELIVERED, a final state/);
    expect(shipped.stdout).toMatch(/\[FORBIDDEN_FOR_MODEL\] PROCESSING\/READY_TO_SHIP is a seller change for .*not for LAAS/);
    expect(shipped.stderr).toMatch(/^error \[CHANGE_REFUSED\]: 2 of 2 change\(s\) refused locally \(TERMINAL_STATE, FORBIDDEN_FOR_MODEL\)/m);
    // One legal and one refused, all or nothing: nothing is queued, and the count names both asked for.
    const atomic = await cli(['ship', String(good!.id), String(delivered!.id), '--all-or-nothing']);
    expect(atomic.code).toBe(1);
    expect(atomic.stdout).toMatch(/^queued nothing \(--all-or-nothing\)/m);
    expect(atomic.stderr).toMatch(/^error \[CHANGE_REFUSED\]: 1 of 2 change\(s\) refused locally \(TERMINAL_STATE\)/m);
    // Mixed with a legal one and --json: the legal one is queued, the refusal listed, exit 1.
    const mixed = await cli(['ship', String(good!.id), String(delivered!.id), '--json']);
    expect(mixed.code).toBe(1);
    const doc = json<{ queued: { orderId: number }[]; refused: { orderId: number; blockers: { code: string }[] }[] }>(mixed);
    expect(doc.queued.map((q) => q.orderId)).toEqual([good!.id]);
    expect(doc.refused[0]).toMatchObject({ orderId: delivered!.id, blockers: [{ code: 'TERMINAL_STATE' }] });
    const illegalBefore = market.stats().illegalRequests;
    const flushed = await cli(['flush']);
    expect(flushed.code, flushed.stderr).toBe(0);
    const touched = market.requests.filter((r) => JSON.stringify(r.body ?? '').includes(String(delivered!.id)) || r.path.includes(String(delivered!.id)));
    expect(touched).toEqual([]);
    expect(market.stats().illegalRequests).toBe(illegalBefore);
    expect(market.getOrder(laas!.id)?.status).toBe('PROCESSING');
  });
});

describe('sync', () => {
  it('reads the configured campaigns from the Market; later commands need no campaign flags', async () => {
    const fresh = new Set([...seed(DBS, 3, 'PROCESSING', 'STARTED'), ...seed(LAAS, 2, 'RESERVED', 'AWAIT_CONFIRMATION')].map((o) => o.id));
    const dir = tempDir();
    const db = ['--db', path.join(dir, 'sync.db'), '--api-url', market.url];
    const config = path.join(dir, 'campaigns.json');
    fs.writeFileSync(config, JSON.stringify({ campaigns: [DBS, LAAS] }));
    const first = await runCli([...db, '--config', config, 'sync']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/synced 2 campaign\(s\) in .*order\(s\) read in \d+ page\(s\), \d+ new/);
    const second = await runCli([...db, 'sync', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(json(second)).toMatchObject({ campaigns: 2, created: 0 });
    for (const id of fresh) expect(json(await runCli([...db, 'status', String(id), '--json']))).toHaveProperty('orderId', id);
  });
});

describe('sync on a terminal', () => {
  it('draws its progress in place (pages, orders read, new, updated), then clears it for the summary', async () => {
    // Run in-process with a terminal-like stdout: a pipe never gets the redrawn line.
    const slow = await startFakeMarket({ apiKey: TEST_API_KEY, campaigns: [FBS], latencyMs: 100 });
    try {
      const ids = Array.from({ length: 120 }, (_, i) => 7_900_000_001 + i);
      slow.seedOrders(ids.map((id) => ({ id, campaignId: FBS.campaignId, status: 'PROCESSING', substatus: 'STARTED', updateDate: Date.now() - 60_000 })));
      let written = '';
      const stdout = Object.assign(new Writable({ write: (chunk, _encoding, done) => ((written += String(chunk)), done()) }), { isTTY: true, columns: 120 });
      const stderr = new Writable({ write: (_chunk, _encoding, done) => done() });
      const dir = tempDir();
      const code = await main(['--db', path.join(dir, 'tty.db'), '--api-url', slow.url, '--campaign', '101:11:FBS', 'sync'], {
        stdin: Readable.from([]),
        stdout,
        stderr,
        env: { YM_API_KEY: TEST_API_KEY },
        cwd: dir,
      });
      transcript.push(written);
      expect(code).toBe(0);
      expect(written).toContain('\r\x1b[Ksync: reading orders from the Market…');
      for (const [pages, seen] of [[1, 50], [2, 100], [3, 120]]) {
        expect(written).toContain(`\r\x1b[Ksync: ${pages} page(s), ${seen} order(s) read, ${seen} new, 0 updated (business 11)`);
      }
      // Cleared before the summary, which starts a clean line.
      expect(written).toMatch(/\r\x1b\[Ksynced 1 campaign\(s\) in .*: 120 order\(s\) read in 3 page\(s\), 120 new/);
    } finally {
      await slow.close();
    }
  });
});

describe('status, history and graph', () => {
  it('history prints the timeline, a Mermaid path, and JSON', async () => {
    const [order] = seed(EXPRESS, 1, 'PROCESSING', 'STARTED');
    const { dir, cli } = await dbWith([order!]);
    expect((await cli(['ship', String(order!.id), '--flush'])).code).toBe(0);
    const human = await cli(['history', String(order!.id)]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/SELLER\.REQUEST .*change idle → queued .*asks PROCESSING\/READY_TO_SHIP/);
    expect(human.stdout).toMatch(/DISPATCH\.ACCEPTED .*PROCESSING\/STARTED → PROCESSING\/READY_TO_SHIP/);
    expect(human.stdout).toMatch(/^path: PROCESSING\/STARTED → PROCESSING\/READY_TO_SHIP$/m);
    const byOption = await cli(['history', '--order', String(order!.id)]);
    expect(byOption.stdout).toBe(human.stdout);
    const missing = await cli(['history']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/error \[USAGE\]: history needs an order id/);
    const mermaid = await cli(['history', String(order!.id), '--mermaid']);
    expect(mermaid.stdout).toMatch(/^stateDiagram-v2\n/);
    expect(mermaid.stdout).toMatch(/s_PROCESSING_STARTED --> s_PROCESSING_READY_TO_SHIP : #\d+ DISPATCH\.ACCEPTED/);
    const doc = json<{ path: string[]; journal: { event_type: string; event: { type: string } }[]; mermaid: string }>(
      await cli(['history', String(order!.id), '--json', '--out', path.join(dir, 'path.mmd')]),
    );
    expect(doc.path).toEqual(['PROCESSING/STARTED', 'PROCESSING/READY_TO_SHIP']);
    expect(doc.journal.map((j) => j.event_type)).toContain('DISPATCH.SENT');
    expect(fs.readFileSync(path.join(dir, 'path.mmd'), 'utf8')).toBe(doc.mermaid);
    const status = await cli(['status', String(order!.id)]);
    expect(status.stdout).toMatch(/last\s+accepted PROCESSING\/READY_TO_SHIP/);
    expect(status.stdout).toMatch(/next\s+CANCELLED\/SHOP_FAILED/);
  });

  it('graph draws the machines as Mermaid and JSON, and --model writes the rules to a file', async () => {
    const dir = tempDir();
    const order = await runCli(['graph']);
    expect(order.code).toBe(0);
    expect(order.stdout).toMatch(/^stateDiagram-v2\n/);
    const definition = json<{ id: string; states: Record<string, unknown> }>(await runCli(['graph', '--machine', 'order', '--format', 'json']));
    expect(Object.keys(definition.states)).toEqual(expect.arrayContaining(['market', 'change']));
    const operation = json<{ machine: string; content: string }>(await runCli(['graph', '--machine', 'operation', '--json']));
    expect(operation.machine).toBe('operation');
    expect(operation.content).toMatch(/inProgress/);
    const out = path.join(dir, 'dbs.mmd');
    const written = await runCli(['graph', '--model', 'dbs', '--out', out]);
    expect(written.code).toBe(0);
    expect(written.stdout).toMatch(/wrote the rules diagram \(DBS highlighted\)/);
    const text = fs.readFileSync(out, 'utf8');
    expect(text).toMatch(/^flowchart LR/);
    expect(text).toMatch(/==>\|"DBS/);
    expect(text).toMatch(/-\.->/); // other models' edges dotted
    const rules = json<{ content: { rules: { models: string[] }[] } }>(await runCli(['graph', '--model', 'LAAS', '--format', 'json', '--json']));
    expect(rules.content.rules.every((r) => r.models.includes('LAAS'))).toBe(true);
    const bad = await runCli(['graph', '--machine', 'order', '--model', 'FBS']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error \[USAGE\]: --model highlights seller rules/m);
  });
});

describe('usage and input errors exit 2 with error [CODE]', () => {
  it('rejects unknown options and commands, malformed ids and campaign specs, bad configs', async () => {
    const dir = tempDir();
    const cases: [string[], RegExp][] = [
      [['status', '--bogus'], /^error \[USAGE\]: unknown option '--bogus'/m],
      [['shipp'], /^error \[USAGE\]: unknown command 'shipp'/m],
      [[], /^error \[USAGE\]: no command given/m],
      [['--db', path.join(dir, 'none.db'), 'status'], /^error \[DB_NOT_FOUND\]: No database at/m],
      [['--campaign', '1:2:FBX', 'sync'], /^error \[USAGE\]: --campaign "1:2:FBX" is not <campaignId>:<businessId>:<MODEL>/m],
      [['--config', path.join(dir, 'missing.json'), 'sync'], /^error \[FILE_UNREADABLE\]: Cannot read config file/m],
      [['graph', '--format', 'png'], /^error \[USAGE\]: --format "png" is not one of mermaid, json/m],
      [['set-status', '12', 'DELIVERED', '--real-delivery-date', '11.05.2025'], /^error \[USAGE\]: --real-delivery-date "11.05.2025" is not YYYY-MM-DD/m],
    ];
    fs.writeFileSync(path.join(dir, 'bad-config.json'), JSON.stringify({ campaigns: [{ campaignId: 1, businessId: 2, model: 'FBY' }] }));
    cases.push([['--config', path.join(dir, 'bad-config.json'), 'sync'], /^error \[CONFIG_INVALID\]: Config file .* is invalid: campaigns\.0\.model/m]);
    const results = await Promise.all(cases.map(([args]) => runCli(['--db', path.join(dir, 'x.db'), ...args])));
    results.forEach((r, i) => {
      expect(r.code, `${cases[i]![0].join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
  });

  it('bad ids, unknown orders, a foreign database and a missing YM_API_KEY change nothing', async () => {
    const [order] = seed(FBS, 1, 'PROCESSING', 'STARTED');
    const { dir, cli } = await dbWith([order!]);
    const malformed = await cli(['ship', String(order!.id), '12x']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^error \[INPUT_INVALID\]: argument: "12x" is not an order id/m);
    const unknown = await cli(['ship', String(order!.id), '424242']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error \[ORDER_NOT_FOUND\]: Order 424242 is not tracked/m);
    const noKey = await runCli(['--db', path.join(dir, 'test.db'), '--api-url', market.url, 'flush'], { env: { YM_API_KEY: undefined } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/^error \[MISSING_API_KEY\]: flush needs the Market API: set the YM_API_KEY environment variable/m);
    const noKeyShip = await runCli(['--db', path.join(dir, 'test.db'), 'ship', String(order!.id), '--flush'], { env: { YM_API_KEY: '' } });
    expect(noKeyShip.code).toBe(2);
    expect(json(await cli(['status', String(order!.id), '--json']))).toMatchObject({ change: 'idle' }); // nothing was queued
    const foreign = path.join(dir, 'foreign.db');
    writeForeignDatabase(foreign);
    const foreignBytes = fs.readFileSync(foreign);
    const notOurs = await runCli(['--db', foreign, 'status']);
    expect(notOurs.code).toBe(2);
    expect(notOurs.stderr).toMatch(/^error \[DB_NOT_OURS\]: .* is an SQLite database of another application/m);
    const notOursDemo = await runCli(['--db', foreign, 'demo']);
    expect(notOursDemo.code).toBe(2);
    expect(notOursDemo.stderr).toMatch(/^error \[DB_NOT_OURS\]/m);
    expect(fs.readFileSync(foreign)).toEqual(foreignBytes);
    // Database URLs: a PostgreSQL server that does not answer, a kind of URL no store opens, and the
    // demo (which replaces its database) on a URL: setup errors, the password never shown, no file made.
    const before = fs.readdirSync(dir).sort();
    const refused = await runCli(['--db', 'postgres://ym:s3cret-pw@127.0.0.1:1/test', 'status']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^error \[DB_CANNOT_OPEN\]: .*postgres:\/\/ym:\*\*\*@127\.0\.0\.1:1\/test/m);
    const otherKind = await runCli(['--db', 'mysql://ym:s3cret-pw@127.0.0.1/test', 'status']);
    expect(otherKind.code).toBe(2);
    expect(otherKind.stderr).toMatch(/^error \[DB_UNSUPPORTED\]: mysql:\/\/ym:\*\*\*@127\.0\.0\.1\/test/m);
    const demoOnUrl = await runCli(['demo'], { env: { YM_DB: 'postgres://ym:s3cret-pw@127.0.0.1:1/test' } });
    expect(demoOnUrl.code).toBe(2);
    expect(demoOnUrl.stderr).toMatch(/^error \[DB_CANNOT_OPEN\]: Cannot open database postgres:\/\/ym:\*\*\*@127\.0\.0\.1:1\/test \(schema ym_orders_demo\)/m);
    for (const r of [refused, otherKind, demoOnUrl]) expect(r.stdout + r.stderr).not.toContain('s3cret-pw');
    expect(fs.readdirSync(dir).sort()).toEqual(before);
    // $YM_DB names the database when --db is not given.
    const viaEnv = await runCli(['status', String(order!.id), '--json'], { env: { YM_DB: path.join(dir, 'test.db') } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(json(viaEnv)).toMatchObject({ orderId: order!.id });
  });

  it('never takes the key as a flag nor echoes it, even with --verbose or a refused key', async () => {
    const [order] = seed(FBS, 1, 'PROCESSING', 'STARTED');
    const { dir } = await dbWith([order!]);
    const db = ['--db', path.join(dir, 'test.db')];
    const asFlag = await runCli([...db, 'flush', `--api-key=${TEST_API_KEY}`]);
    expect(asFlag.code).toBe(2);
    expect(asFlag.stderr).toMatch(/^error \[USAGE\]: unknown option '--api-key=…'.*only from the YM_API_KEY environment variable/m);
    // The key is refused by the Market: exit 1, the halt reported, the key nowhere in the output.
    await runCli([...db, 'ship', String(order!.id)]);
    const wrongKey = `${TEST_API_KEY}-wrong`;
    const refused = await runCli([...db, '--api-url', market.url, '--verbose', 'flush', '--max-wait', '2'], { env: { YM_API_KEY: wrongKey } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error \[MARKET_AUTH\]: Campaign 101: .*HTTP 401/m);
    expect(refused.stdout + refused.stderr).not.toContain(wrongKey);
    const unreachable = await runCli([...db, '--api-url', 'http://127.0.0.1:9', '--verbose', 'sync']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^error \[MARKET_NETWORK\]/m);
  });
});

// ---- the demo's run, in this process: its numbers against the fake's own -----------------

describe('demo (runDemo in process)', () => {
  it('new orders and the Market\'s moves arrive by notification, are read and applied, and the report counts what the fake sent', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'demo.db');
    const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
    const out = new Output({ stdout: sink, stderr: sink }, { json: false, verbose: false });
    const report = await runDemo({ orders: 200, chaos: false, database: { kind: 'sqlite', file }, processes: 1, diagram: path.join(dir, 'demo.mmd'), cwd: dir }, out);

    // What the receiver answered is what the fake delivered; the duplicates it sent were ignored.
    const n = report.notifications;
    expect(n.received).toBe(report.notifier.delivered);
    expect(report.notifier.duplicatesSent).toBeGreaterThan(0);
    expect(n.duplicates).toBe(report.notifier.duplicatesSent);
    expect(report.notifier.reordered).toBeGreaterThan(0);
    expect(n.received).toBe(n.stored + n.duplicates + n.ignored);
    expect(n.ignoredTypes).toEqual({ CHAT_CREATED: report.chats });
    expect({ invalid: n.invalid, failed: n.failed, unsettled: n.unsettled, rejected: report.notifier.rejected }).toEqual({ invalid: 0, failed: 0, unsettled: 0, rejected: 0 });
    // Every new order was read after its ORDER_CREATED and is tracked; every order equals the fake's.
    expect(report.placed).toBe(20);
    expect(report.placedTracked).toBe(report.placed);
    expect(report.reads.calls).toBeGreaterThan(0);
    expect(report.reads.orders).toBeGreaterThanOrEqual(report.placed);
    expect(report.reads.notFound).toBe(0);
    expect(report.pickedUp).toBeGreaterThan(0);
    expect(report.market).toMatchObject({ orders: 220, agree: 220, differ: [], duplicateApplications: 0 });
    expect(report.ordersStored).toBe(220);
    expect(demoFailure(report)).toBeUndefined();

    // No second sync: the couriers' moves reached the engine as ORDER_STATUS_UPDATED, the new orders by their read.
    const engine = await createEngine({ db: file });
    try {
      const moved: number[] = [];
      const readIn: number[] = [];
      for (let id = 48_000_000_001; id < 48_000_000_001 + 220; id++) {
        const rows = await engine.history(id);
        if (rows.some((r) => r.source === 'notification' && r.from_substatus === 'READY_TO_SHIP' && r.to_status === 'DELIVERY')) moved.push(id);
        if (id > 48_000_000_200 && rows[0]?.event_type === 'TRACK') readIn.push(id);
      }
      expect(moved).toHaveLength(report.pickedUp);
      expect(readIn).toHaveLength(report.placed);
    } finally {
      await engine.close();
    }

    // The summary and the JSON document carry the same numbers.
    const text = describeDemo(report).join('\n');
    expect(text).toMatch(new RegExp(`^ {2}notifications {8}${n.received} received \\(the fake delivered ${n.received}: ${n.duplicates} sent twice, \\d+ out of order, 0 retries\\); ${n.stored} stored, ${n.duplicates} duplicates ignored, ${report.chats} ignored \\(CHAT_CREATED ×${report.chats}\\), 0 refused \\(400\\), 0 failed \\(500\\)$`, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}reads {16}${report.reads.calls} getBusinessOrders calls for ${report.reads.orders} notified orders \\(0 not found\\)$`, 'm'));
    expect(text).toMatch(/^ {3}notifications: .*; 20\/20 new orders tracked; all applied/m);
    expect(text).toMatch(/engine and Market agree on 220\/220 orders/);
    const doc = demoJson(report) as { notifications: Record<string, unknown>; reads: unknown; marketMoves: unknown };
    expect(doc.notifications).toMatchObject({ received: n.received, duplicates: n.duplicates, ignoredTypes: n.ignoredTypes, fake: report.notifier });
    expect(doc.reads).toEqual(report.reads);
    expect(doc.marketMoves).toMatchObject({ placed: 20, placedTracked: 20, chats: report.chats });

    // A new order not tracked, a notification left unapplied, or one the receiver refused fails the demo.
    expect(demoFailure({ ...report, placedTracked: report.placed - 1 })).toMatchObject({ code: 'DEMO_INCOMPLETE', details: { untracked: 1 } });
    expect(demoFailure({ ...report, notifications: { ...n, unsettled: 2 } })).toMatchObject({ code: 'DEMO_INCOMPLETE', details: { unsettledNotifications: 2 } });
    expect(demoFailure({ ...report, notifications: { ...n, invalid: 1 } })).toMatchObject({ code: 'DEMO_CHECK_FAILED', details: { invalidNotifications: 1 } });
  }, 60_000);
});
