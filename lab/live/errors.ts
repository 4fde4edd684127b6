/**
 * The live lab's own failures, with stable codes: what the machine lacks (namespaces, tools) is told apart from a
 * bad scenario file or a lab that is not sealed, so tests can skip on the first and fail on the others.
 */
export const LIVE_ERROR_CODES = {
  NO_NETNS: 'network namespaces cannot be created here (needs root / CAP_NET_ADMIN)',
  MISSING_TOOL: 'a tool a scenario runs is not installed',
  NOT_SEALED: 'a lab namespace has a route or interface that could lead out of the lab',
  BAD_SCENARIO: 'a scenario file is invalid',
  STEP_FAILED: 'a command that builds or runs the lab failed',
} as const;

export type LiveErrorCode = keyof typeof LIVE_ERROR_CODES;

export class LiveLabError extends Error {
  readonly code: LiveErrorCode;
  constructor(code: LiveErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LiveLabError';
    this.code = code;
  }
}

export const isLiveLabError = (e: unknown, code?: LiveErrorCode): e is LiveLabError =>
  e instanceof LiveLabError && (code === undefined || e.code === code);
