/**
 * The `iot-ids` command: a thin dispatcher. Each stage owns its sub-command; they load lazily so that
 * `iot-ids hub` never pulls in TensorFlow.js and `iot-ids train` never pulls in the MQTT client.
 */
import { defineCommand, runMain } from 'citty';

const main = defineCommand({
  meta: { name: 'iot-ids', description: 'Intrusion detection for IoT fleets' },
  subCommands: {
    train: () => import('../trainer/train-command.ts').then((m) => m.default),
    lab: () => import('../lab/lab-command.ts').then((m) => m.default),
    flows: () => import('../asm/flows-command.ts').then((m) => m.default),
    // score-captures is the hub's (edge/): attached here so trainer/ never imports the hub runtime.
    bundle: () =>
      import('../trainer/bundle/bundle-command.ts').then((m) => ({
        ...m.default,
        subCommands: {
          ...(m.default.subCommands as Record<string, unknown>),
          'score-captures': () => import('../edge/score-captures-command.ts').then((s) => s.default),
        },
      })),
    hub: () => import('../edge/hub-command.ts').then((m) => m.default),
    aggregator: () => import('../aggregator/aggregator-command.ts').then((m) => m.default),
    dataset: () => import('../aggregator/dataset-command.ts').then((m) => m.default),
    rollout: () => import('../aggregator/rollout/rollout-command.ts').then((m) => m.default),
    demo: () => import('./demo-command.ts').then((m) => m.default),
    bench: () => import('../bench/bench-command.ts').then((m) => m.default),
  },
});

runMain(main);
