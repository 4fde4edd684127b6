/**
 * Entry of the single-file hub (scripts/build-hub.mjs → dist/hub/iot-ids-hub.mjs): `node iot-ids-hub.mjs --bundle
 * DIR --flows FILE ...` takes the same options as `iot-ids hub`. Kept apart from cli/main.ts so the hub build
 * pulls in no trainer, lab or aggregator code.
 */
import { runMain } from 'citty';
import hub from './hub-command.ts';

runMain(hub);
