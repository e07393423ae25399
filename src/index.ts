// `ym-orders`: the engine, its store and the Market client, with every typed error.

export { createEngine, Engine, type EngineOptions, type EngineSummary, type RequestChangesResult, type TrackResult } from './engine/engine.js';
export type { OrderState } from './engine/order-book.js';
export type { CampaignConfig, ObserveCommand, RequestChangeCommand, TrackOrderCommand } from './engine/commands.js';
export * from './engine/errors.js';
export { ORDER_SNAPSHOT_MIGRATIONS, type SnapshotMigration } from './engine/order-snapshots.js';
export * from './store/index.js';
export { YmOrdersError, isYmOrdersError } from './errors.js';
