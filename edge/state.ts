/**
 * The hub's health: `online`, or `degraded` with a reason while one of its parts cannot do its job (an input that
 * failed or stopped being analysable, an offline queue that lost records or cannot be written). Status and stats
 * carry it, and `hub --exit-at-end` exits non-zero when the hub was degraded at any time during the run, so a
 * problem that cleared before the end is still not reported as a clean run.
 *
 * Each part degrades and recovers under its own name, so an input recovering does not hide a broken queue.
 */

export type HealthState = 'online' | 'degraded';

export class Health {
  private readonly problems = new Map<string, string>();
  private listener: (() => void) | undefined;
  /** The first reason this hub was ever degraded for (kept after recovery, for the exit code). */
  firstProblem: string | undefined;

  get state(): HealthState {
    return this.problems.size ? 'degraded' : 'online';
  }

  /** The most recent open problem, prefixed by the part that reported it. */
  get reason(): string | undefined {
    let last: string | undefined;
    for (const [part, reason] of this.problems) last = `${part}: ${reason}`;
    return last;
  }

  get everDegraded(): boolean {
    return this.firstProblem !== undefined;
  }

  /** Called with no arguments whenever state or reason changes (the hub republishes its status then). */
  onChange(fn: () => void): void {
    this.listener = fn;
  }

  degrade(part: string, reason: string): void {
    if (this.problems.get(part) === reason) return;
    // Re-inserting moves the part to the end, so `reason` names the newest problem.
    this.problems.delete(part);
    this.problems.set(part, reason);
    this.firstProblem ??= `${part}: ${reason}`;
    this.listener?.();
  }

  recover(part: string): void {
    if (this.problems.delete(part)) this.listener?.();
  }
}
