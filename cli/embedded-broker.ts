/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1, in-memory sessions) on a free loopback port: the demo's default
 * broker, and the one tests and benchmarks fall back to where mosquitto is not installed. close() ends every
 * client connection, so nothing keeps the process alive.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface EmbeddedBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(): Promise<EmbeddedBroker> {
  const { Aedes } = (await import('aedes')) as unknown as {
    Aedes: { createBroker(): Promise<{ handle(s: Socket): void; close(cb: () => void): void }> };
  };
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    broker.handle(sock);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
