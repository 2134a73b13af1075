/**
 * The room channel (docs/signaling.md): Socket.IO namespace `/room`, authenticated by a join
 * token, `room:join` on every (re)connection, lobby until admitted.
 */

import { io, type Socket } from "socket.io-client";

import type { SharedViewer } from "../wire/protocol";

export interface HospitalRef {
  code: string;
  name: string;
  tier: string;
}

export interface Member {
  participant_id: string;
  user_id: number;
  name: string;
  hospital: HospitalRef;
  role: string;
  status: "connected" | "reconnecting";
  media: { mic: boolean; camera: boolean; screen: boolean; speaking: boolean };
}

export interface Snapshot {
  consultation_id: number;
  you: string;
  members: Member[];
  hands: string[];
  control_holder: string | null;
  /** Who drives the viewer now (signaling/viewer.py has the rule). */
  driver: string | null;
  auto_admit: boolean;
  chat: unknown[];
  lobby?: Member[];
  /** The shared viewer state (null until someone drives). */
  viewer?: SharedViewer | null;
}

export interface JoinAck {
  participant_id: string;
  status: "admitted" | "lobby";
  resumed: boolean;
  snapshot: Snapshot | null;
}

export type RoomStatus =
  | { kind: "connecting" }
  | { kind: "lobby"; participantId: string }
  | { kind: "admitted"; participantId: string; snapshot: Snapshot }
  | { kind: "reconnecting" }
  | { kind: "closed"; reason: CloseReason; message: string; code?: string };

export type CloseReason = "left" | "denied" | "removed" | "replaced" | "ended" | "refused" | "error";

export class RoomError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "RoomError";
  }
}

const ACK_TIMEOUT_MS = 10_000;

/** The `exp` of a JWT in ms (0 when unreadable). Read for timing only; the server verifies. */
export function jwtExpiry(token: string): number {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = (JSON.parse(atob(payload)) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}
/** Connection refusals worth a new join token and another try. */
const RETRY_CODES = new Set(["token_expired", "invalid_token"]);

export interface RoomConnectionOptions {
  consultationId: number;
  /** The first join token (fetched by the page, so its errors show there). */
  token: string;
  /** A fresh join token for each reconnection. */
  renewToken: () => Promise<string>;
  /** Socket.IO server URL; the page's origin by default. */
  url?: string;
}

export class RoomConnection {
  readonly socket: Socket;
  private statusValue: RoomStatus = { kind: "connecting" };
  private statusListeners = new Set<(status: RoomStatus) => void>();
  private token: string;
  private refusals = 0;
  private closing = false;

  constructor(private readonly options: RoomConnectionOptions) {
    this.token = options.token;
    const url = options.url ?? "";
    this.socket = io(`${url}/room`, {
      path: "/socket.io",
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5_000,
      // Asked on every (re)connection: a join token near its expiry is renewed first.
      auth: (cb) => {
        const send = () => cb({ token: this.token, consultation_id: options.consultationId });
        if (jwtExpiry(this.token) - Date.now() > 30_000) send();
        else {
          options.renewToken().then(
            (token) => {
              this.token = token;
              send();
            },
            () => send(),
          );
        }
      },
    });
    this.socket.on("connect", () => void this.join());
    this.socket.on("connect_error", (err: Error & { data?: { code?: string; message?: string; retry_after_s?: number } }) =>
      void this.onConnectError(err),
    );
    this.socket.on("disconnect", (reason) => {
      if (this.closing || this.statusValue.kind === "closed") return;
      if (reason === "io server disconnect") {
        // The server closed us without saying why (a kick says so first): try again.
        this.setStatus({ kind: "reconnecting" });
        void this.renewAndConnect();
        return;
      }
      this.setStatus({ kind: "reconnecting" });
    });
    this.socket.on("room:admitted", (body: { snapshot: Snapshot }) => {
      const pid = "participantId" in this.statusValue ? this.statusValue.participantId : body.snapshot.you;
      this.setStatus({ kind: "admitted", participantId: pid, snapshot: body.snapshot });
    });
    this.socket.on("room:denied", () => this.close("denied", ""));
    this.socket.on("room:removed", (body: { reason?: string }) => this.close("removed", body?.reason ?? ""));
    this.socket.on("room:replaced", () => this.close("replaced", ""));
    this.socket.on("room:ended", () => this.close("ended", ""));
  }

  get status(): RoomStatus {
    return this.statusValue;
  }

  onStatus(listener: (status: RoomStatus) => void): () => void {
    this.statusListeners.add(listener);
    listener(this.statusValue);
    return () => this.statusListeners.delete(listener);
  }

  /** A server → client event (presence, control, chat, ...). */
  on<T>(event: string, handler: (payload: T) => void): () => void {
    this.socket.on(event, handler as (...args: unknown[]) => void);
    return () => this.socket.off(event, handler as (...args: unknown[]) => void);
  }

  connect(): void {
    this.socket.connect();
  }

  /** Sends an event and waits for its ack; a refused event throws RoomError. */
  async request<T>(event: string, payload: object = {}): Promise<T> {
    const ack = (await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload)) as
      | (T & { error?: undefined })
      | { error: { code: string; message: string } };
    if (ack && typeof ack === "object" && "error" in ack && ack.error) {
      throw new RoomError(ack.error.code, ack.error.message);
    }
    return ack as T;
  }

  /** Leaves the room (the others see a leave, not a timeout) and closes the socket. */
  async leave(): Promise<void> {
    if (this.statusValue.kind === "closed") return;
    this.closing = true;
    try {
      if (this.socket.connected) await this.request("room:leave");
    } catch {
      // gone already: the grace period will end the membership
    } finally {
      this.close("left", "");
    }
  }

  /** Closes without `room:leave` (a page reload keeps the place through the grace period). */
  close(reason: CloseReason, message: string, code?: string): void {
    this.closing = true;
    this.socket.disconnect();
    this.setStatus({ kind: "closed", reason, message, code });
  }

  private setStatus(status: RoomStatus): void {
    if (this.statusValue.kind === "closed") return;
    this.statusValue = status;
    for (const listener of this.statusListeners) listener(status);
  }

  private async join(): Promise<void> {
    try {
      const ack = await this.request<JoinAck>("room:join");
      this.refusals = 0;
      if (ack.status === "lobby") {
        this.setStatus({ kind: "lobby", participantId: ack.participant_id });
      } else if (ack.snapshot) {
        this.setStatus({ kind: "admitted", participantId: ack.participant_id, snapshot: ack.snapshot });
      }
    } catch (err) {
      const code = err instanceof RoomError ? err.code : "error";
      const message = err instanceof Error ? err.message : String(err);
      if (code === "removed") this.close("removed", "");
      else if (!this.socket.connected) this.setStatus({ kind: "reconnecting" });
      else this.close("error", message);
    }
  }

  private async onConnectError(err: Error & { data?: { code?: string; message?: string; retry_after_s?: number } }): Promise<void> {
    if (this.closing) return;
    const code = err.data?.code;
    if (!code) {
      // A transport failure: Socket.IO keeps trying by itself.
      this.setStatus({ kind: "reconnecting" });
      return;
    }
    if (code === "rate_limited") {
      // Refused for a while, not for good: come back when the server says.
      this.setStatus({ kind: "reconnecting" });
      setTimeout(() => {
        if (!this.closing) this.socket.connect();
      }, (err.data?.retry_after_s ?? 5) * 1000);
      return;
    }
    if (RETRY_CODES.has(code) && this.refusals++ < 3) {
      this.setStatus({ kind: "reconnecting" });
      await this.renewAndConnect();
      return;
    }
    this.close("refused", err.data?.message ?? err.message, code);
  }

  private async renewAndConnect(): Promise<void> {
    try {
      this.token = await this.options.renewToken();
    } catch (err) {
      this.close("refused", err instanceof Error ? err.message : String(err));
      return;
    }
    if (!this.closing) this.socket.connect();
  }
}
