export * from './config.js';
export * from './app.js';
export * from './auth.js';
export * from './metrics.js';
export * from './subscriptions.js';
export * from './retention.js';
export * from './storage/partition-store.js';
export { main } from './main.js';
