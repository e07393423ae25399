// Global options and how a command gets its engine: the database, the campaigns (from
// --config, --campaign and the database itself) and the Market API (its URL from --api-url,
// YM_API_URL or the config file; the key from YM_API_KEY only, never a flag).

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { createEngine, type Engine, type EngineOptions } from '../engine/engine.js';
import type { CampaignConfig } from '../engine/commands.js';
import { CLI_ERROR_CODES, CliError, EXIT_CODES, usageError } from './errors.js';
import { Output, type OutputStreams } from './output.js';
import { parseSeconds } from './input.js';

export const DEFAULT_API_URL = 'https://api.partner.market.yandex.ru';
export const API_KEY_ENV = 'YM_API_KEY';
export const API_URL_ENV = 'YM_API_URL';
export const MODELS = ['FBS', 'EXPRESS', 'DBS', 'LAAS'] as const;

export interface GlobalOptions {
  readonly db: string;
  /** `--api-url` as given; see apiUrlOf for where the URL comes from without it. */
  readonly apiUrl?: string;
  /** Seconds the Market has to answer one call (the API's own timeout is 10 s). */
  readonly apiTimeout: string;
  readonly config?: string;
  readonly campaign: readonly string[];
  readonly json: boolean;
  readonly verbose: boolean;
}

/** What a command runs with: streams and environment (tests and main pass the process's). */
export interface CliIo extends OutputStreams {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** `--db`, else $YM_DB (e.g. a postgres:// URL, whose password then stays out of shell history), else the default. */
export const DB_ENV = 'YM_DB';

export function globalsOf(command: Command, env: NodeJS.ProcessEnv): GlobalOptions {
  const o = command.optsWithGlobals() as Partial<GlobalOptions>;
  const fromEnv = command.getOptionValueSourceWithGlobals('db') === 'default' ? env[DB_ENV] : undefined;
  return {
    db: fromEnv || (o.db ?? './ym-orders.db'),
    ...(o.apiUrl !== undefined ? { apiUrl: o.apiUrl } : {}),
    apiTimeout: o.apiTimeout ?? '10',
    ...(o.config !== undefined ? { config: o.config } : {}),
    campaign: o.campaign ?? [],
    json: o.json === true,
    verbose: o.verbose === true,
  };
}

export function outputFor(io: CliIo, globals: Pick<GlobalOptions, 'json' | 'verbose'>): Output {
  return new Output(io, globals, [io.env[API_KEY_ENV]]);
}

const campaignSchema = z.strictObject({
  campaignId: z.number().int().positive(),
  businessId: z.number().int().positive(),
  model: z.enum(MODELS),
});
// Strict: a misspelt key ("apiURL", "campaign") is refused rather than silently ignored.
const configSchema = z.strictObject({
  apiUrl: z.string().optional(),
  campaigns: z.array(campaignSchema).min(1).optional(),
});
const CONFIG_SHAPE = '{"apiUrl"?: "https://…", "campaigns"?: [{"campaignId", "businessId", "model": FBS|EXPRESS|DBS|LAAS}]}';

export interface ConfigFile {
  readonly campaigns: readonly CampaignConfig[];
  readonly apiUrl?: string;
}

/** `21000001:1100001:FBS` → a campaign; the model is case-insensitive. */
export function parseCampaignSpec(spec: string): CampaignConfig {
  const match = /^(\d{1,15}):(\d{1,15}):([A-Za-z]+)$/.exec(spec.trim());
  const model = match?.[3]?.toUpperCase();
  if (!match || !(MODELS as readonly string[]).includes(model ?? '') || Number(match[1]) <= 0 || Number(match[2]) <= 0) {
    throw new CliError(
      CLI_ERROR_CODES.usage,
      `--campaign "${spec}" is not <campaignId>:<businessId>:<MODEL> (MODEL one of ${MODELS.join(', ')}), e.g. --campaign 21000001:1100001:FBS`,
    );
  }
  return { campaignId: Number(match[1]), businessId: Number(match[2]), model: model as CampaignConfig['model'] };
}

export function readConfigFile(file: string, cwd: string): ConfigFile {
  const full = path.resolve(cwd, file);
  let text: string;
  try {
    text = fs.readFileSync(full, 'utf8');
  } catch (error) {
    throw new CliError(CLI_ERROR_CODES.fileUnreadable, `Cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CliError(CLI_ERROR_CODES.configInvalid, `Config file ${file} is not JSON (${(error as Error).message}). Expected ${CONFIG_SHAPE}.`);
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new CliError(CLI_ERROR_CODES.configInvalid, `Config file ${file} is invalid: ${issues}. Expected ${CONFIG_SHAPE}.`);
  }
  return { campaigns: parsed.data.campaigns ?? [], ...(parsed.data.apiUrl !== undefined ? { apiUrl: parsed.data.apiUrl } : {}) };
}

export function configOf(globals: GlobalOptions, cwd: string): ConfigFile | undefined {
  return globals.config === undefined ? undefined : readConfigFile(globals.config, cwd);
}

/** Campaigns from --config then --campaign (a later one with the same id wins). */
export function campaignsOf(globals: GlobalOptions, config: ConfigFile | undefined): CampaignConfig[] {
  const byId = new Map<number, CampaignConfig>();
  for (const c of config?.campaigns ?? []) byId.set(c.campaignId, c);
  for (const spec of globals.campaign) {
    const c = parseCampaignSpec(spec);
    byId.set(c.campaignId, c);
  }
  return [...byId.values()];
}

export function apiKeyOf(io: CliIo, what: string): string {
  const key = io.env[API_KEY_ENV]?.trim();
  if (!key) {
    throw new CliError(
      CLI_ERROR_CODES.missingApiKey,
      `${what} needs the Market API: set the ${API_KEY_ENV} environment variable to your Api-Key token (it is never accepted as a flag).`,
      EXIT_CODES.usage,
    );
  }
  return key;
}

/** Where the Market URL was found, the first of: --api-url, $YM_API_URL, the config's apiUrl, the default. */
export type ApiUrlSource = '--api-url' | typeof API_URL_ENV | 'the config file\'s "apiUrl"' | 'the default';

export interface ApiUrl {
  readonly baseUrl: string;
  readonly source: ApiUrlSource;
}

export function apiUrlOf(globals: GlobalOptions, env: NodeJS.ProcessEnv, config: ConfigFile | undefined): ApiUrl {
  const fromEnv = env[API_URL_ENV]?.trim();
  const [value, source]: [string, ApiUrlSource] =
    globals.apiUrl !== undefined
      ? [globals.apiUrl, '--api-url']
      : fromEnv
        ? [fromEnv, API_URL_ENV]
        : config?.apiUrl !== undefined
          ? [config.apiUrl, 'the config file\'s "apiUrl"']
          : [DEFAULT_API_URL, 'the default'];
  return { baseUrl: parseApiUrl(value, source), source };
}

export function parseApiUrl(value: string, source: ApiUrlSource = '--api-url'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`The Market URL "${value}" from ${source} is not a URL; e.g. ${DEFAULT_API_URL} or http://127.0.0.1:8080 for a fake Market.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`The Market URL from ${source} must be http(s), not ${url.protocol}`);
  if (url.username || url.password) throw usageError(`The Market URL from ${source} must not carry credentials; the key comes from YM_API_KEY.`);
  return value;
}

export interface OpenOptions {
  /** The command calls the Market (flush, run, sync): YM_API_KEY is required. */
  readonly api?: string | false;
  /** Refuse a database file that does not exist yet (read commands should not create one). */
  readonly mustExist?: boolean;
  readonly engine?: Partial<EngineOptions>;
}

/** `postgres://…` and the like: a store named by URL, handed to the engine as is (it says which it supports). */
export function isStoreUrl(db: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(db);
}

/** What `--db` names for the engine: `:memory:` and URLs as given, a file path resolved against `cwd`. */
export function dbPath(globals: GlobalOptions, cwd: string): string {
  return globals.db === ':memory:' || isStoreUrl(globals.db) ? globals.db : path.resolve(cwd, globals.db);
}

/**
 * Opens the engine for a command; closes it (and its HTTP pool) when `fn` settles. `fn` gets the
 * Market URL too when the command calls the Market.
 */
/** DB_NOT_FOUND for a database file that does not exist (a URL names a server, not a file). */
export function requireDatabaseFile(file: string): void {
  if (isStoreUrl(file) || fs.existsSync(file)) return;
  throw new CliError(
    CLI_ERROR_CODES.dbNotFound,
    `No database at ${file}. Import orders (ym-orders import) or sync them (ym-orders sync) first, or point --db at an existing file.`,
  );
}

export async function withEngine<T>(
  io: CliIo,
  globals: GlobalOptions,
  options: OpenOptions,
  fn: (engine: Engine, api: ApiUrl | undefined) => Promise<T>,
): Promise<T> {
  const config = configOf(globals, io.cwd);
  const campaigns = campaignsOf(globals, config);
  const file = dbPath(globals, io.cwd);
  const url = options.api ? apiUrlOf(globals, io.env, config) : undefined;
  const api = options.api && url
    ? {
        baseUrl: url.baseUrl,
        apiKey: apiKeyOf(io, options.api),
        timeoutMs: Math.max(1, parseSeconds(globals.apiTimeout, '--api-timeout')),
      }
    : undefined;
  if (options.mustExist && file !== ':memory:') requireDatabaseFile(file);
  const engine = await createEngine({ db: file, campaigns, ...(api ? { api } : {}), ...options.engine });
  try {
    return await fn(engine, url);
  } finally {
    await engine.close();
  }
}

export function requireCampaigns(engine: Engine, what: string): void {
  if (engine.campaigns.size === 0) {
    throw new CliError(
      CLI_ERROR_CODES.noCampaigns,
      `${what} needs at least one campaign: pass --campaign <campaignId>:<businessId>:<MODEL> or --config <file> once; the database remembers them.`,
    );
  }
}
