export * from './ports.js';
export * from './manifests.js';
export * from './cluster.js';
export * from './raw-client.js';
export * from './until.js';
export * from './tmpfs.js';
export * from './tcp-proxy.js';
