// Worker entry: workers do not inherit the tsx loader the CLI registers, so register it here, then run the TS worker.
import { register } from 'tsx/esm/api';

register();
await import('./parallel-worker.ts');
