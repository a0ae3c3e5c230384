/**
 * The one mapping from Hadron error codes to HTTP statuses for the CloudEvents HTTP ingress
 * (the gRPC edge has its own, `grpcStatusOf`). Statuses follow RFC 9110 and the CloudEvents HTTP
 * binding's advice for webhooks: 4xx for what the sender must change, 429/503 with
 * `Retry-After` for what a later retry can fix.
 */
import type { ErrorCode } from '@hadron/core';

/** Seconds a sender should wait before retrying a 429/503 answer. */
export const RETRY_AFTER_SECONDS = 1;

export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'INVALID_ARGUMENT':
    case 'EMPTY_BATCH':
    case 'INVALID_EVENT':
    case 'MALFORMED_MESSAGE':
    case 'PROTOCOL_VIOLATION':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'PERMISSION_DENIED':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'MESSAGE_TOO_LARGE':
    case 'TOO_MANY_EVENTS':
      return 413;
    case 'SERVER_BUSY':
      return 429;
    case 'DISK_FULL':
    case 'STORAGE_FAILURE':
    case 'UNAVAILABLE':
    case 'NO_PARTITIONS':
      return 503;
    case 'DEADLINE_EXCEEDED':
      return 504;
    case 'UNIMPLEMENTED':
      return 501;
    default:
      return 500;
  }
}
