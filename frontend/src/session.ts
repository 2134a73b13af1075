/**
 * The login session: access and refresh tokens, kept in the browser's storage so that a
 * reload or a second tab stays signed in.
 *
 * The server rotates refresh tokens and treats a spent one presented again as theft (the
 * whole login is revoked). So a refresh must never run twice with the same token: within a
 * tab concurrent callers share one refresh, and across tabs a Web Lock serializes them; the
 * holder re-reads the storage first and adopts tokens another tab rotated meanwhile instead
 * of spending the old refresh token again.
 */

export interface Hospital {
  id: number;
  code: string;
  name: string;
  tier: string;
  parent_id: number | null;
}

export interface User {
  id: number;
  email: string;
  name: string;
  roles: string[];
  active: boolean;
  hospital: Hospital;
  /** The app's language the user chose; null until they choose one. */
  language: "vi" | "en" | null;
}

export interface Tokens {
  access: string;
  /** Local clock, ms since the epoch: when the access token stops being accepted. */
  accessExpiresAt: number;
  refresh: string;
  refreshExpiresAt: number;
  user: User;
}

/** The server's error body, `{"error": {code, message, field?}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** The error body's other facts (e.g. `missing`, `revision`). */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The session cannot be renewed: the user must sign in again. */
export class SessionExpired extends Error {
  constructor(message = "session expired") {
    super(message);
    this.name = "SessionExpired";
  }
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Runs `fn` while holding the named lock (across tabs where the browser has Web Locks). */
export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export interface SessionOptions {
  store: KeyValueStore;
  fetch: FetchFn;
  lock?: LockFn;
  now?: () => number;
  /** Renew the access token when it has less than this left (ms). */
  renewBeforeMs?: number;
}

const STORAGE_KEY = "hoichan.session";
const LOCK_NAME = "hoichan.session.refresh";

interface TokenResponse {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  user: User;
}

/** An in-process mutex, for where `navigator.locks` is missing. */
export function localLock(): LockFn {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(_name: string, fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

export function browserLock(): LockFn {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks) return localLock();
  return <T>(name: string, fn: () => Promise<T>) =>
    locks.request(name, () => fn()) as Promise<T>;
}

export async function errorFromResponse(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  let field: string | undefined;
  let detail: Record<string, unknown> = {};
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string; field?: string } };
    if (body?.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      field = body.error.field;
      detail = body.error as Record<string, unknown>;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message, field, detail);
}

export class Session {
  private readonly store: KeyValueStore;
  private readonly fetchFn: FetchFn;
  private readonly lock: LockFn;
  private readonly now: () => number;
  private readonly renewBeforeMs: number;
  private refreshing: Promise<Tokens> | null = null;
  private expiredListeners = new Set<() => void>();
  private changeListeners = new Set<(tokens: Tokens | null) => void>();

  constructor(options: SessionOptions) {
    this.store = options.store;
    this.fetchFn = options.fetch;
    this.lock = options.lock ?? localLock();
    this.now = options.now ?? (() => Date.now());
    this.renewBeforeMs = options.renewBeforeMs ?? 30_000;
  }

  /** The stored tokens, or null when signed out (or the refresh token is past its life). */
  tokens(): Tokens | null {
    const raw = this.store.getItem(STORAGE_KEY);
    if (!raw) return null;
    try {
      const tokens = JSON.parse(raw) as Tokens;
      if (typeof tokens.access !== "string" || typeof tokens.refresh !== "string") return null;
      if (tokens.refreshExpiresAt <= this.now()) return null;
      return tokens;
    } catch {
      return null;
    }
  }

  get user(): User | null {
    return this.tokens()?.user ?? null;
  }

  isSignedIn(): boolean {
    return this.tokens() !== null;
  }

  /** Called once each time the session is found dead (refresh refused or missing). */
  onExpired(listener: () => void): () => void {
    this.expiredListeners.add(listener);
    return () => this.expiredListeners.delete(listener);
  }

  onChange(listener: (tokens: Tokens | null) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  async login(email: string, password: string): Promise<User> {
    const response = await this.fetchFn("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    if (!response.ok) throw await errorFromResponse(response);
    const tokens = this.save((await response.json()) as TokenResponse);
    return tokens.user;
  }

  /** Keeps ``user`` (as the server now returns it) in place of the signed-in user. */
  replaceUser(user: User): void {
    const tokens = this.tokens();
    if (!tokens) return;
    this.store.setItem(STORAGE_KEY, JSON.stringify({ ...tokens, user }));
    for (const listener of this.changeListeners) listener({ ...tokens, user });
  }

  /** Revokes the login on the server (best effort) and forgets it here. */
  async logout(): Promise<void> {
    const tokens = this.tokens();
    this.clear();
    if (!tokens) return;
    try {
      await this.fetchFn("/api/auth/logout", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: `Bearer ${tokens.access}`,
        },
        body: JSON.stringify({ refresh_token: tokens.refresh }),
      });
    } catch {
      // offline: the refresh token still dies at its expiry, and it is gone from here
    }
  }

  /** A valid access token, renewed first when it is about to expire. */
  async accessToken(): Promise<string> {
    const tokens = this.tokens();
    if (!tokens) throw this.expire();
    if (tokens.accessExpiresAt - this.renewBeforeMs > this.now()) return tokens.access;
    return (await this.refresh(tokens.access)).access;
  }

  /**
   * `fetch` with the bearer token. A 401 renews the token once and retries; when the
   * session cannot be renewed, throws SessionExpired (and the expired listeners run).
   */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const token = await this.accessToken();
    const response = await this.fetchFn(path, withBearer(init, token));
    if (response.status !== 401) return response;
    const renewed = await this.refresh(token);
    const retry = await this.fetchFn(path, withBearer(init, renewed.access));
    if (retry.status === 401) throw this.expire();
    return retry;
  }

  /** JSON in, JSON out; a non-2xx answer becomes an ApiError. */
  async json<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (json !== undefined) headers.set("Content-Type", "application/json");
    headers.set("Accept", "application/json");
    const response = await this.fetch(path, {
      ...rest,
      headers,
      body: json !== undefined ? JSON.stringify(json) : rest.body,
    });
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  /**
   * Renews the tokens. `staleAccess` is the access token the caller found too old: if the
   * stored one differs, someone (this tab or another) has renewed meanwhile and that is used.
   */
  private refresh(staleAccess: string): Promise<Tokens> {
    if (!this.refreshing) {
      this.refreshing = this.lock(LOCK_NAME, () => this.refreshLocked(staleAccess)).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async refreshLocked(staleAccess: string): Promise<Tokens> {
    const current = this.tokens();
    if (!current) throw this.expire();
    if (current.access !== staleAccess && current.accessExpiresAt - this.renewBeforeMs > this.now()) {
      return current;
    }
    // A network failure propagates as it is: offline is not signed out.
    const response = await this.fetchFn("/api/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: current.refresh }),
    });
    if (response.status === 401) {
      this.clear();
      throw this.expire();
    }
    if (!response.ok) throw await errorFromResponse(response);
    return this.save((await response.json()) as TokenResponse);
  }

  private save(body: TokenResponse): Tokens {
    const now = this.now();
    const tokens: Tokens = {
      access: body.access_token,
      accessExpiresAt: now + body.expires_in * 1000,
      refresh: body.refresh_token,
      refreshExpiresAt: now + body.refresh_expires_in * 1000,
      user: body.user,
    };
    this.store.setItem(STORAGE_KEY, JSON.stringify(tokens));
    for (const listener of this.changeListeners) listener(tokens);
    return tokens;
  }

  private clear(): void {
    this.store.removeItem(STORAGE_KEY);
    for (const listener of this.changeListeners) listener(null);
  }

  private expire(): SessionExpired {
    for (const listener of this.expiredListeners) listener();
    return new SessionExpired();
  }
}

function withBearer(init: RequestInit, token: string): RequestInit {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${token}`);
  return { ...init, headers };
}

export const SESSION_STORAGE_KEY = STORAGE_KEY;
