/**
 * The room protocol's payloads (docs/signaling.md), generated from the pydantic models of
 * signaling/schemas.py by signaling/wire_types.py: do not edit, run `make wire-types`.
 * tests/signaling/test_wire_types.py fails while this file differs from what it generates.
 */

/**
 * Both directions of the room channel (Socket.IO namespace /room).
 */
export interface RoomProtocol {
  client: ClientEvents;
  server: ServerEvents;
}
/**
 * Each client → server event and its payload.
 */
export interface ClientEvents {
  "room:join": Empty;
  "room:leave": Empty;
  "room:end": Empty;
  "lobby:admit": Target;
  "lobby:admit_all": Empty;
  "lobby:deny": Target;
  "lobby:auto_admit": AutoAdmit;
  "host:mute": Mute;
  "host:remove": Remove;
  "host:set_role": SetRole;
  "host:give_control": GiveControl;
  "control:take": Empty;
  "control:release": Empty;
  "control:request": Empty;
  "viewer:state": ViewerStateIn;
  "viewer:pointer": PointerIn;
  "control:cancel": Empty;
  "control:deny": Target;
  "hand:raise": Empty;
  "hand:lower": LowerHand;
  "chat:send": ChatSend;
  "media:state": MediaStateIn;
  "media:publish": Publish;
  "media:subscribe": Empty;
  "media:subscribe_answer": SubscribeAnswer;
  "media:ice": Ice;
  "media:restart": Empty;
}
export interface Empty {}
export interface Target {
  participant_id: string;
}
export interface AutoAdmit {
  on: boolean;
}
export interface Mute {
  participant_id: string;
  audio?: boolean;
  video?: boolean;
}
export interface Remove {
  participant_id: string;
  reason?: string;
}
export interface SetRole {
  participant_id: string;
  role: "presenter" | "participant" | "observer";
}
export interface GiveControl {
  participant_id: string | null;
}
/**
 * The whole shared view: the controller sends it after each change (throttled), the
 * server keeps the latest for late joiners and fans it out.
 */
export interface ViewerStateIn {
  /**
   * @minItems 1
   * @maxItems 2
   */
  viewports: [Viewport] | [Viewport, Viewport];
  active?: number;
  /**
   * @maxItems 200
   */
  measurements?: Measurement[];
}
/**
 * What one viewport shows, as the controller's viewer has it.
 */
export interface Viewport {
  study_uid?: string | null;
  series_uid?: string | null;
  sop_uid?: string | null;
  frame?: number;
  image_index?: number;
  window_center?: number | null;
  window_width?: number | null;
  zoom?: number;
  /**
   * @minItems 2
   * @maxItems 2
   */
  pan?: [number, number];
  rotation?: number;
  flip_h?: boolean;
  flip_v?: boolean;
  invert?: boolean;
  cine_playing?: boolean;
  cine_fps?: number;
}
export interface Measurement {
  id: string;
  tool: "length" | "angle" | "roi" | "arrow";
  viewport?: number;
  frame_of_reference_uid?: string | null;
  /**
   * @minItems 1
   * @maxItems 16
   */
  points: [[number, number, number], ...[number, number, number][]];
  label?: string;
}
/**
 * The laser pointer as fractions of the image's columns and rows (0-1), so it lands on
 * the same anatomy however each screen fits the image; None hides it.
 */
export interface PointerIn {
  viewport?: number;
  x?: number | null;
  y?: number | null;
}
export interface LowerHand {
  participant_id?: string | null;
}
export interface ChatSend {
  text: string;
  client_id?: string | null;
}
export interface MediaStateIn {
  mic?: boolean;
  camera?: boolean;
  screen?: boolean;
  speaking?: boolean;
}
export interface Publish {
  sdp: string;
}
export interface SubscribeAnswer {
  sdp: string;
  version?: number | null;
}
export interface Ice {
  pc: "publish" | "subscribe";
  candidate: Candidate | null;
}
/**
 * A browser's ``RTCIceCandidate.toJSON()``.
 */
export interface Candidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}
/**
 * The server → client events whose payload the browser reads.
 */
export interface ServerEvents {
  "control:changed": ControlChanged;
  "viewer:state": SharedViewer;
  "viewer:pointer": PointerOut;
}
/**
 * ``control:changed``, whenever the holder or the driver changes. Who drives is worked
 * out by the server alone (signaling/viewer.py); clients read it here and in the snapshot
 * (``control_holder``, ``driver``).
 */
export interface ControlChanged {
  holder: string | null;
  driver: string | null;
  by: string | null;
  reason: "given" | "taken" | "released" | "left" | "reconnecting" | "resumed" | "joined" | "role_changed";
}
/**
 * ``viewer:state`` to the room (and the snapshot's ``viewer``): the driver's state as the
 * server keeps it, numbered.
 */
export interface SharedViewer {
  seq: number;
  by: string;
  state: ViewerStateIn;
}
/**
 * ``viewer:pointer`` to the room; x and y None: hidden.
 */
export interface PointerOut {
  by: string;
  viewport: number;
  x: number | null;
  y: number | null;
}
