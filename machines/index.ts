// `ym-orders/machines`: the pure half of the engine. No I/O, no clock: step these with
// XState's `transition()` in your own tests, or open them in the Stately visualizer.

export * from './statuses.js';
export * from './rules.js';
export * from './call-evidence.js';
export * from './explain.js';
export * from './chain-plan.js';
export * from './order-machine.js';
export * from './operation-machine.js';
export type { EffectOf } from './effects.js';
export { toMermaid, rulesToMermaid } from './mermaid.js';
export { rulesToMarkdown } from './rules-table.js';
export { toMachineConfig, type JsonValue, type MachineConfigJson, type NamedConfig, type StateConfigJson, type TransitionConfigJson, type TransitionsJson } from './visualizer-config.js';
