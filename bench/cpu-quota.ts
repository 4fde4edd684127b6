/**
 * A CPU quota for one benchmark process (Linux cgroups, as root): the process and its threads get at most `cores`
 * cores' worth of CPU time. The two-instance aggregator case uses it to ask what the design allows when every
 * aggregator has a core's share of its own and the broker and database have headroom (a 2-core machine cannot
 * give two aggregators, mosquitto and PostgreSQL a core each). Works with cgroup v1 (`cpu` controller) and v2
 * (`cpu.max`, when the cpu controller is enabled for the root's children); otherwise says why not.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const V1 = '/sys/fs/cgroup/cpu';
const V2 = '/sys/fs/cgroup';
const PERIOD_US = 100_000;

export interface CpuQuota {
  /** Moves the process back to the root group (if still alive) and removes the group. */
  release(): void;
}

export function limitCpu(pid: number, cores: number, name: string): CpuQuota | string {
  if (!(cores > 0)) return `quota must be > 0 cores, got ${cores}`;
  const quota = String(Math.round(cores * PERIOD_US));
  try {
    if (existsSync(join(V1, 'cpu.cfs_quota_us'))) {
      const dir = join(V1, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), quota);
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      return { release: () => release(dir, join(V1, 'cgroup.procs')) };
    }
    if (existsSync(join(V2, 'cgroup.subtree_control')) && readFileSync(join(V2, 'cgroup.subtree_control'), 'utf8').includes('cpu')) {
      const dir = join(V2, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      return { release: () => release(dir, join(V2, 'cgroup.procs')) };
    }
    return 'no writable cgroup cpu controller (cgroup v1 cpu, or v2 with cpu in the root\'s subtree_control)';
  } catch (e) {
    return `cannot set a CPU quota: ${(e as Error).message}`;
  }
}

function release(dir: string, rootProcs: string): void {
  try {
    for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) writeFileSync(rootProcs, p);
  } catch {
    // the process is gone: nothing to move
  }
  try {
    rmdirSync(dir);
  } catch (e) {
    // a process still inside (the caller waits for exits first): say so rather than fail the run
    console.warn(`cpu-quota: ${dir} left behind: ${(e as Error).message}`);
  }
}
