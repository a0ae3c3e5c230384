/**
 * Hadron's error model: one base class, a stable `code` per condition, a `retriable` flag and
 * typed context. Domain code throws these; the transport edge maps them to gRPC statuses with
 * `grpcStatusOf` (the only such mapping). Every code is listed in docs/errors.md and a test
 * keeps that list and `ERROR_CODES` in sync.
 */

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

export const statusName = (code: number): string =>
  Object.entries(Status).find(([, v]) => v === code)?.[0] ?? `STATUS_${code}`;

interface CodeInfo {
  status: StatusCode;
  retriable: boolean;
  summary: string;
}

/** Every stable error code, its gRPC status, whether a retry can help, and what it means. */
export const ERROR_CODES = {
  INVALID_ARGUMENT: { status: Status.INVALID_ARGUMENT, retriable: false, summary: 'A request field is missing or invalid.' },
  EMPTY_BATCH: { status: Status.INVALID_ARGUMENT, retriable: false, summary: 'A publish request carried no events.' },
  INVALID_EVENT: { status: Status.INVALID_ARGUMENT, retriable: false, summary: 'An event is malformed or lacks a required CloudEvents attribute.' },
  MALFORMED_MESSAGE: { status: Status.INVALID_ARGUMENT, retriable: false, summary: 'Bytes that are not a valid protobuf encoding of the expected message.' },
  MESSAGE_TOO_LARGE: { status: Status.RESOURCE_EXHAUSTED, retriable: false, summary: 'A message exceeds the configured maximum message size.' },
  TOO_MANY_EVENTS: { status: Status.RESOURCE_EXHAUSTED, retriable: false, summary: 'A publish request carries more events than the configured maximum per request.' },
  SERVER_BUSY: { status: Status.RESOURCE_EXHAUSTED, retriable: true, summary: 'A server-wide resource limit (request bytes in flight) is reached; retry later.' },
  PROTOCOL_VIOLATION: { status: Status.INVALID_ARGUMENT, retriable: false, summary: 'A subscription stream sent a message that is not valid in its current state.' },
  UNAUTHENTICATED: { status: Status.UNAUTHENTICATED, retriable: false, summary: 'Credentials are missing, malformed, badly signed or unknown (also: revoked).' },
  PERMISSION_DENIED: { status: Status.PERMISSION_DENIED, retriable: false, summary: 'The token is valid but lacks the permission for this action.' },
  NOT_FOUND: { status: Status.NOT_FOUND, retriable: false, summary: 'The named pipeline (or other object) is not known on this partition.' },
  UNIMPLEMENTED: { status: Status.UNIMPLEMENTED, retriable: false, summary: 'The method or feature is not implemented.' },
  DISK_FULL: { status: Status.RESOURCE_EXHAUSTED, retriable: true, summary: 'The partition has no space left on its volume; nothing was written.' },
  STORAGE_FAILURE: { status: Status.INTERNAL, retriable: true, summary: 'A storage operation failed; nothing was acknowledged.' },
  DATA_CORRUPTION: { status: Status.DATA_LOSS, retriable: false, summary: 'Stored data failed its checksum; it is never served.' },
  UNAVAILABLE: { status: Status.UNAVAILABLE, retriable: true, summary: 'The server is starting, shutting down or unreachable.' },
  DEADLINE_EXCEEDED: { status: Status.DEADLINE_EXCEEDED, retriable: true, summary: 'The operation did not finish before its deadline.' },
  CANCELLED: { status: Status.CANCELLED, retriable: false, summary: 'The caller cancelled the operation.' },
  INTERNAL: { status: Status.INTERNAL, retriable: false, summary: 'An unexpected internal error.' },
  CONFIG_INVALID: { status: Status.FAILED_PRECONDITION, retriable: false, summary: 'Configuration (environment or flags) is missing or invalid.' },
  MANIFEST_INVALID: { status: Status.INVALID_ARGUMENT, retriable: false, summary: 'A Stream, Pipeline or Token manifest failed validation.' },
  NO_PARTITIONS: { status: Status.UNAVAILABLE, retriable: true, summary: 'The client knows no healthy partition to send to.' },
  TLS_HANDSHAKE_FAILED: { status: Status.UNAVAILABLE, retriable: false, summary: 'TLS refused the connection: the certificate could not be verified (unknown CA, expired, wrong host name) or was not accepted.' },
  GROUP_BUSY: { status: Status.FAILED_PRECONDITION, retriable: false, summary: 'A consumer group cannot be reset or deleted while members are connected (unless forced).' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base of every error Hadron raises on purpose. */
export class HadronError extends Error {
  override name = 'HadronError';
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: Record<string, unknown>; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
    this.context = Object.freeze({ ...options.context });
  }

  get status(): StatusCode {
    return ERROR_CODES[this.code].status;
  }
}

/**
 * An error that came back from a remote peer as a gRPC status. Hadron servers send the stable
 * code in the `hadron-error-code` trailer, so the client gets the same `code` and `retriable`
 * as the server raised; for other peers the code is derived from the status.
 */
export class GrpcStatusError extends HadronError {
  override name = 'GrpcStatusError';
  constructor(
    readonly grpcStatus: number,
    message: string,
    hadronCode?: string,
  ) {
    const code = hadronCode !== undefined && Object.hasOwn(ERROR_CODES, hadronCode) ? (hadronCode as ErrorCode) : codeOfStatus(grpcStatus);
    super(code, message, { context: { grpcStatus } });
  }
  override get status(): StatusCode {
    return this.grpcStatus as StatusCode;
  }
}

function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case Status.INVALID_ARGUMENT:
      return 'INVALID_ARGUMENT';
    case Status.UNAUTHENTICATED:
      return 'UNAUTHENTICATED';
    case Status.PERMISSION_DENIED:
      return 'PERMISSION_DENIED';
    case Status.NOT_FOUND:
      return 'NOT_FOUND';
    case Status.RESOURCE_EXHAUSTED:
      return 'MESSAGE_TOO_LARGE';
    case Status.UNAVAILABLE:
      return 'UNAVAILABLE';
    case Status.DEADLINE_EXCEEDED:
      return 'DEADLINE_EXCEEDED';
    case Status.CANCELLED:
      return 'CANCELLED';
    case Status.DATA_LOSS:
      return 'DATA_CORRUPTION';
    case Status.UNIMPLEMENTED:
      return 'UNIMPLEMENTED';
    default:
      return 'INTERNAL';
  }
}

/** The gRPC status and message to send for any thrown value. Unknown errors become INTERNAL. */
export function grpcStatusOf(err: unknown): { status: StatusCode; message: string; code: ErrorCode } {
  if (err instanceof HadronError) return { status: err.status, message: err.message, code: err.code };
  return { status: Status.INTERNAL, message: 'internal server error', code: 'INTERNAL' };
}

export const isRetriable = (err: unknown): boolean => err instanceof HadronError && err.retriable;
