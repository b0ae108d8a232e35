/**
 * The way back from a function to this platform's API (functions that call Lambda with their own
 * credentials). In an isolated network nothing leads to the host's loopback; instead each
 * environment gets a Unix socket in the worker's run dir, relayed into its namespace at
 * `127.0.0.1:9000` (`SandboxView.platformApiUrl`). A connection accepted there is tagged with the
 * environment it came from (`sandboxOriginOf`) and handed to the API's HTTP server as if it had
 * arrived on its own port, so the API can tell it apart and require that function's credentials.
 * Where the sandbox shares the host's network (host network, process driver) the endpoint is the
 * server's real address, and connections are not tagged.
 */
import { unlink } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import type { SandboxView } from "../sandbox/driver.js";
import { listenUnix } from "./unix-listen.js";

/** Which environment a connection to the platform API came through. */
export interface SandboxOrigin {
  /** The execution environment (a stem cell's id until it is adopted). */
  environmentId: string;
  /** The function and version it runs; absent for a stem cell not yet given a function. */
  functionName?: string;
  functionVersion?: string;
}

const origins = new WeakMap<Socket, SandboxOrigin>();

/**
 * The environment a connection came from, when it arrived through an environment's own channel;
 * undefined for every other connection (the API's TCP port). Read it from `request.raw.socket`.
 */
export function sandboxOriginOf(socket: Socket | undefined): SandboxOrigin | undefined {
  return socket ? origins.get(socket) : undefined;
}

/** One environment's listener. */
export interface PlatformApiListener {
  readonly path: string;
  close(): Promise<void>;
}

export class PlatformApiChannel {
  /** The server's own URL: what environments sharing the host's network use. */
  hostUrl = "";
  #accept: ((socket: Socket) => void) | null = null;

  /** The API is up: connections go to `accept` (e.g. `(s) => httpServer.emit("connection", s)`). */
  attach(accept: (socket: Socket) => void, hostUrl: string): void {
    this.#accept = accept;
    this.hostUrl = hostUrl;
  }

  detach(): void {
    this.#accept = null;
  }

  /**
   * The value for `AWS_ENDPOINT_URL_LAMBDA` inside an environment with this view: the driver's own
   * relay (isolated network) or the server's real address.
   */
  urlFor(view: SandboxView): string {
    return view.platformApiUrl ?? this.hostUrl;
  }

  /** Listen on `path` for one environment; every connection is tagged with `origin`. */
  async listen(path: string, origin: SandboxOrigin): Promise<PlatformApiListener> {
    const open = new Set<Socket>();
    const server: Server = createServer((socket) => {
      const accept = this.#accept;
      if (!accept) {
        socket.destroy();
        return;
      }
      open.add(socket);
      socket.once("close", () => open.delete(socket));
      origins.set(socket, origin);
      accept(socket);
    });
    await listenUnix(server, path);
    return {
      path,
      async close() {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of open) socket.destroy();
        await closed;
        await unlink(path).catch(() => {});
      },
    };
  }
}
