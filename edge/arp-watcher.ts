/** The ARP watcher moved to edge/watchers/arp.ts beside the other watchers; this path stays for its importers. */
export { ArpWatcher, type ArpWatcherOptions, type ArpWatcherStats } from './watchers/arp.ts';
