import { defineCommand } from 'citty';

export default defineCommand({
  meta: { name: 'demo', description: 'Run the whole fleet locally' },
  run() {
    throw new Error('the demo is not built yet');
  },
});
