// The Partner API layer: schemas, client, errors, refusal texts, rate-limit headers, redaction.
export * from './client.js';
export * from './dates.js';
export * from './errors.js';
export * from './rate-limit.js';
export * from './refusals.js';
export * from './redact.js';
export * from './schemas.js';
