export * from './types.js';
export * from './kubeconfig.js';
export * from './client.js';
export * from './informer.js';
export * from './crds.js';
export * from './apply.js';
export * from './control-plane.js';
