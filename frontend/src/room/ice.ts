/**
 * The TURN servers that come with each join token (`ice_servers`, time-limited credentials
 * whose username is `<unix expiry>:<user id>`). Every new peer connection takes the newest
 * list. A media restart can come long after the token was fetched, so credentials about to
 * expire are renewed (with a new join token) before they are handed out.
 */

/** Renew this long before the expiry: ICE gathering and the allocation take a moment. */
const MARGIN_MS = 60_000;

/** When the soonest TURN credential of the list expires, in ms (Infinity without any). */
export function credentialsExpiry(servers: readonly RTCIceServer[]): number {
  let soonest = Infinity;
  for (const server of servers) {
    const expiry = Number(server.username?.split(":")[0]);
    if (server.username && Number.isFinite(expiry)) soonest = Math.min(soonest, expiry * 1000);
  }
  return soonest;
}

export class IceServers {
  private servers: RTCIceServer[] = [];

  constructor(
    /** Fetches a new join token, which calls `set` with its list. */
    private readonly renew: () => Promise<unknown>,
    private readonly now: () => number = Date.now,
  ) {}

  set(servers: RTCIceServer[]): void {
    this.servers = servers;
  }

  /** The list for a new peer connection, renewed first when it is about to expire. */
  async current(): Promise<RTCIceServer[]> {
    if (credentialsExpiry(this.servers) - this.now() < MARGIN_MS) {
      // A failed renewal (the consultation just ended, the network is down) keeps the list
      // we have: host candidates still connect where the network allows.
      await this.renew().catch(() => undefined);
    }
    return this.servers;
  }
}
