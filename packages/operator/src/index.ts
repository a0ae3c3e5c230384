export * from './config.js';
export * from './metrics.js';
export * from './objects.js';
export * from './leader.js';
export * from './workqueue.js';
export * from './controller.js';
export * from './webhook.js';
export * from './app.js';
