/**
 * Every error the project raises on bad input, with a stable code. Users and tests match on `code`;
 * the message names the file, offset, row, field or parameter at fault.
 */

export const ERROR_CODES = {
  BAD_HEADER: 'a CSV header is missing or lacks required columns',
  BAD_ROW: 'a CSV row cannot be read (wrong cell count, text in a numeric cell)',
  EMPTY_INPUT: 'an input has no data',
  UNKNOWN_LABEL: 'a label value that no class mapping names',
  BAD_OPTION: 'a command-line option or setting is invalid',
  BAD_CAPTURE: 'a packet capture is truncated or corrupt',
  BAD_MODEL: 'a model cannot be exported, loaded or run',
  BAD_BUNDLE: 'a bundle is incomplete, tampered with or unsigned',
  BAD_PAYLOAD: 'an MQTT payload does not match its schema',
  STORE_FAILED: 'a storage backend failed',
  // The live lab's (lab/live/): what the machine lacks (namespaces, tools) is told apart from a bad scenario file
  // or a lab that is not sealed, so tests can skip on the first and fail on the others.
  NO_NETNS: 'network namespaces cannot be created here (needs root / CAP_NET_ADMIN)',
  MISSING_TOOL: 'a tool a scenario runs is not installed',
  NOT_SEALED: 'a lab namespace has a route or interface that could lead out of the lab',
  BAD_SCENARIO: 'a scenario file is invalid',
  STEP_FAILED: 'a command that builds or runs the lab failed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class IdsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdsError';
    this.code = code;
  }
}

export const isIdsError = (e: unknown, code?: ErrorCode): e is IdsError =>
  e instanceof IdsError && (code === undefined || e.code === code);
