import { describe, expect, it } from "vitest";
import {
  ApiError,
  localLock,
  Session,
  SessionExpired,
  type FetchFn,
  type KeyValueStore,
} from "../src/session";

class MemoryStore implements KeyValueStore {
  data = new Map<string, string>();
  getItem(key: string) {
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.data.set(key, value);
  }
  removeItem(key: string) {
    this.data.delete(key);
  }
}

const user = {
  id: 3,
  email: "doctor.bm@demo.hoichan.vn",
  name: "GS. Nguyễn Văn An",
  roles: ["doctor"],
  active: true,
  hospital: { id: 1, code: "BM", name: "Bạch Mai", tier: "central", parent_id: null },
};

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

/**
 * A fake of the server's auth API with its real rules: refresh tokens rotate, a spent one
 * presented again revokes the whole login, access tokens expire after `accessLife` ms.
 */
class FakeServer {
  now = 1_000_000;
  accessLife = 900_000;
  issued = 0;
  live = new Set<string>();
  spent = new Set<string>();
  accessExpiry = new Map<string, number>();
  revoked = false;
  refreshCalls = 0;
  reuseDetected = false;
  /** Delay the refresh answer until this promise settles (to overlap callers). */
  refreshGate: Promise<void> | null = null;
  log: string[] = [];

  private tokens() {
    const n = ++this.issued;
    const access = `access-${n}`;
    const refresh = `refresh-${n}`;
    this.live.add(refresh);
    this.accessExpiry.set(access, this.now + this.accessLife);
    return {
      access_token: access,
      token_type: "bearer",
      expires_in: this.accessLife / 1000,
      refresh_token: refresh,
      refresh_expires_in: 7 * 86400,
      user,
    };
  }

  fetch: FetchFn = async (input, init = {}) => {
    const body = init.body ? JSON.parse(String(init.body)) : {};
    const auth = new Headers(init.headers).get("Authorization");
    this.log.push(`${init.method ?? "GET"} ${input}`);
    if (input === "/api/auth/login") {
      if (body.password !== "right") {
        return json(401, { error: { code: "unauthorized", message: "wrong e-mail or password" } });
      }
      this.revoked = false;
      return json(200, this.tokens());
    }
    if (input === "/api/auth/refresh") {
      this.refreshCalls++;
      if (this.refreshGate) await this.refreshGate;
      const token = body.refresh_token as string;
      if (this.spent.has(token)) {
        this.reuseDetected = true;
        this.revoked = true;
        this.live.clear();
        return json(401, { error: { code: "unauthorized", message: "refresh token already used" } });
      }
      if (!this.live.has(token) || this.revoked) {
        return json(401, { error: { code: "unauthorized", message: "invalid refresh token" } });
      }
      this.live.delete(token);
      this.spent.add(token);
      return json(200, this.tokens());
    }
    if (input === "/api/auth/logout") {
      this.revoked = true;
      this.live.clear();
      return new Response(null, { status: 204 });
    }
    const access = auth?.replace(/^Bearer /, "") ?? "";
    const expiry = this.accessExpiry.get(access);
    if (expiry === undefined || expiry <= this.now || this.revoked) {
      return json(401, { error: { code: "unauthorized", message: "token expired" } });
    }
    return json(200, { path: input, token: access });
  };
}

function setup(store = new MemoryStore(), server = new FakeServer(), lock = localLock()) {
  const session = new Session({ store, fetch: server.fetch, lock, now: () => server.now });
  return { session, server, store };
}

describe("Session", () => {
  it("logs in, keeps the tokens in storage and sends the bearer token", async () => {
    const { session, store } = setup();
    expect(session.isSignedIn()).toBe(false);
    const me = await session.login("doctor.bm@demo.hoichan.vn", "right");
    expect(me.email).toBe("doctor.bm@demo.hoichan.vn");
    expect(session.isSignedIn()).toBe(true);
    expect([...store.data.keys()]).toEqual(["hoichan.session"]);
    const body = await session.json<{ token: string }>("/api/me");
    expect(body.token).toBe("access-1");
  });

  it("refuses a wrong password with the server's error", async () => {
    const { session } = setup();
    const err = await session.login("x@y.z", "wrong").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(err.message).toBe("wrong e-mail or password");
    expect(session.isSignedIn()).toBe(false);
  });

  it("renews an access token that is about to expire before using it", async () => {
    const { session, server } = setup();
    await session.login("a@b.c", "right");
    server.now += server.accessLife - 10_000; // 10 s left: within the renewal margin
    const body = await session.json<{ token: string }>("/api/me");
    expect(body.token).toBe("access-2");
    expect(server.refreshCalls).toBe(1);
  });

  it("on a 401 renews once and retries the request", async () => {
    const { session, server } = setup();
    await session.login("a@b.c", "right");
    server.accessExpiry.set("access-1", server.now - 1); // the server says it is dead already
    const body = await session.json<{ token: string }>("/api/me");
    expect(body.token).toBe("access-2");
    expect(server.log.filter((l) => l === "GET /api/me")).toHaveLength(2);
  });

  it("concurrent callers share one refresh: the rotated token is never spent twice", async () => {
    const { session, server } = setup();
    await session.login("a@b.c", "right");
    server.now += server.accessLife; // expired
    let open!: () => void;
    server.refreshGate = new Promise((resolve) => (open = resolve));
    const calls = [1, 2, 3, 4, 5].map(() => session.json<{ token: string }>("/api/me"));
    await Promise.resolve();
    open();
    const answers = await Promise.all(calls);
    expect(answers.map((a) => a.token)).toEqual(Array(5).fill("access-2"));
    expect(server.refreshCalls).toBe(1);
    expect(server.reuseDetected).toBe(false);
  });

  it("two tabs sharing the storage: the second adopts the first's rotation", async () => {
    const store = new MemoryStore();
    const server = new FakeServer();
    const lock = localLock(); // stands for navigator.locks shared by the tabs
    const tabA = setup(store, server, lock).session;
    const tabB = setup(store, server, lock).session;
    await tabA.login("a@b.c", "right");
    server.now += server.accessLife;
    const [a, b] = await Promise.all([tabA.json<{ token: string }>("/x"), tabB.json<{ token: string }>("/y")]);
    expect(a.token).toBe("access-2");
    expect(b.token).toBe("access-2");
    expect(server.refreshCalls).toBe(1);
    expect(server.reuseDetected).toBe(false);
  });

  it("a refused refresh ends the session: storage cleared, expired listeners told", async () => {
    const { session, server, store } = setup();
    await session.login("a@b.c", "right");
    let told = 0;
    session.onExpired(() => told++);
    server.revoked = true; // e.g. logged out elsewhere
    server.now += server.accessLife;
    const err = await session.json("/api/me").catch((e) => e);
    expect(err).toBeInstanceOf(SessionExpired);
    expect(told).toBeGreaterThan(0);
    expect(store.data.size).toBe(0);
    expect(session.isSignedIn()).toBe(false);
  });

  it("a refresh token past its life counts as signed out", async () => {
    const { session, server } = setup();
    await session.login("a@b.c", "right");
    server.now += 7 * 86400 * 1000 + 1;
    expect(session.isSignedIn()).toBe(false);
    await expect(session.accessToken()).rejects.toBeInstanceOf(SessionExpired);
  });

  it("a network failure during refresh is not a logout", async () => {
    const { session, server, store } = setup();
    await session.login("a@b.c", "right");
    server.now += server.accessLife;
    const realFetch = server.fetch;
    server.fetch = async () => {
      throw new TypeError("Failed to fetch");
    };
    const offline = new Session({ store, fetch: (i, init) => server.fetch(i, init), now: () => server.now });
    await expect(offline.json("/api/me")).rejects.toThrow("Failed to fetch");
    expect(offline.isSignedIn()).toBe(true);
    server.fetch = realFetch;
    const body = await offline.json<{ token: string }>("/api/me");
    expect(body.token).toBe("access-2");
    expect(session.isSignedIn()).toBe(true);
  });

  it("logout revokes on the server and forgets the tokens", async () => {
    const { session, server, store } = setup();
    await session.login("a@b.c", "right");
    await session.logout();
    expect(server.log).toContain("POST /api/auth/logout");
    expect(store.data.size).toBe(0);
    expect(server.live.size).toBe(0);
  });
});
