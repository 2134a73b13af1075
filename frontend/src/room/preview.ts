/**
 * Before joining: the camera and microphone preview with a choice of devices. Resolves with
 * the chosen stream (or null: join without camera and microphone).
 */

import { errorBox, h, replaceChildren } from "../dom";
import { strings } from "../strings";

/** Enough for the presenter's large tile; the SFU caps grid tiles' bitrate (docs/media.md). */
export const VIDEO_CONSTRAINTS: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 20 } };

export async function openDevices(cameraId: string | null, micId: string | null): Promise<MediaStream> {
  return navigator.mediaDevices.getUserMedia({
    video: { ...VIDEO_CONSTRAINTS, ...(cameraId ? { deviceId: { exact: cameraId } } : {}) },
    audio: micId ? { deviceId: { exact: micId } } : true,
  });
}

export function describeMediaError(err: unknown): string {
  const name = err instanceof DOMException ? err.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return strings.mediaDenied;
  if (name === "NotFoundError" || name === "OverconstrainedError") return strings.mediaNotFound;
  if (name === "NotReadableError") return strings.mediaBusy;
  return strings.mediaFailed(err instanceof Error ? err.message : String(err));
}

export interface PreviewResult {
  stream: MediaStream | null;
  mic: boolean;
  camera: boolean;
}

/** The choice made in this tab for a consultation: a reload goes straight back in. */
interface SavedChoice {
  media: boolean;
  cameraId: string | null;
  micId: string | null;
  mic: boolean;
  camera: boolean;
}

const CHOICE_KEY = (id: number) => `hoichan.media.${id}`;

export function saveChoice(consultationId: number, result: PreviewResult): void {
  const video = result.stream?.getVideoTracks()[0];
  const audio = result.stream?.getAudioTracks()[0];
  const choice: SavedChoice = {
    media: result.stream !== null,
    cameraId: video?.getSettings().deviceId ?? null,
    micId: audio?.getSettings().deviceId ?? null,
    mic: result.mic,
    camera: result.camera,
  };
  sessionStorage.setItem(CHOICE_KEY(consultationId), JSON.stringify(choice));
}

export function forgetChoice(consultationId: number): void {
  sessionStorage.removeItem(CHOICE_KEY(consultationId));
}

/** The devices chosen earlier in this tab, opened again; null when there is no choice or
 * the devices cannot be opened (the preview is shown then). */
export async function reopenChoice(consultationId: number): Promise<PreviewResult | null> {
  let choice: SavedChoice;
  try {
    choice = JSON.parse(sessionStorage.getItem(CHOICE_KEY(consultationId)) ?? "null") as SavedChoice;
  } catch {
    return null;
  }
  if (!choice || typeof choice !== "object") return null;
  if (!choice.media) return { stream: null, mic: false, camera: false };
  try {
    const stream = await openDevices(choice.cameraId, choice.micId);
    for (const t of stream.getAudioTracks()) t.enabled = choice.mic;
    for (const t of stream.getVideoTracks()) t.enabled = choice.camera;
    return { stream, mic: choice.mic, camera: choice.camera };
  } catch {
    return null;
  }
}

/** Shows the preview in `container`; resolves when the user clicks Join. */
export function preview(container: HTMLElement, title: string): Promise<PreviewResult> {
  return new Promise((resolve) => {
    let stream: MediaStream | null = null;
    let mic = true;
    let camera = true;
    const video = h("video", { class: "preview-video", autoplay: true, muted: true, playsinline: true, "data-testid": "preview-video" });
    video.muted = true;
    const cameraSelect = h("select", { "data-testid": "camera-select", "aria-label": strings.camera });
    const micSelect = h("select", { "data-testid": "mic-select", "aria-label": strings.microphone });
    const status = h("div", { class: "preview-status" });
    const micToggle = h("button", { type: "button", "data-testid": "preview-mic" });
    const camToggle = h("button", { type: "button", "data-testid": "preview-camera" });
    const joinButton = h("button", { type: "button", class: "primary", "data-testid": "join-room" }, strings.joinRoom);
    const noDevices = h("button", { type: "button", class: "link", "data-testid": "join-without-media" }, strings.joinWithoutMedia);
    const labels = () => {
      micToggle.textContent = mic ? strings.micOn : strings.micOff;
      camToggle.textContent = camera ? strings.cameraOn : strings.cameraOff;
      micToggle.setAttribute("aria-pressed", String(!mic));
      camToggle.setAttribute("aria-pressed", String(!camera));
      for (const t of stream?.getAudioTracks() ?? []) t.enabled = mic;
      for (const t of stream?.getVideoTracks() ?? []) t.enabled = camera;
    };
    micToggle.addEventListener("click", () => {
      mic = !mic;
      labels();
    });
    camToggle.addEventListener("click", () => {
      camera = !camera;
      labels();
    });

    const fillSelect = (select: HTMLSelectElement, devices: MediaDeviceInfo[], current: string | undefined, label: (n: number) => string) => {
      replaceChildren(
        select,
        devices.map((d, n) => h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || label(n + 1))),
      );
      select.disabled = devices.length === 0;
    };

    const open = async () => {
      replaceChildren(status, strings.mediaOpening);
      joinButton.disabled = true;
      const cameraId = cameraSelect.value || null;
      const micId = micSelect.value || null;
      for (const t of stream?.getTracks() ?? []) t.stop();
      stream = null;
      try {
        stream = await openDevices(cameraId, micId);
        video.srcObject = stream;
        labels();
        replaceChildren(status);
        const devices = await navigator.mediaDevices.enumerateDevices();
        fillSelect(cameraSelect, devices.filter((d) => d.kind === "videoinput"), stream.getVideoTracks()[0]?.getSettings().deviceId, strings.cameraN);
        fillSelect(micSelect, devices.filter((d) => d.kind === "audioinput"), stream.getAudioTracks()[0]?.getSettings().deviceId, strings.microphoneN);
      } catch (err) {
        video.srcObject = null;
        replaceChildren(status, errorBox(describeMediaError(err), { label: strings.retry, run: () => void open() }));
      } finally {
        joinButton.disabled = false;
      }
    };
    cameraSelect.addEventListener("change", () => void open());
    micSelect.addEventListener("change", () => void open());
    joinButton.addEventListener("click", () => resolve({ stream, mic: mic && !!stream, camera: camera && !!stream }));
    noDevices.addEventListener("click", () => {
      for (const t of stream?.getTracks() ?? []) t.stop();
      resolve({ stream: null, mic: false, camera: false });
    });

    replaceChildren(
      container,
      h(
        "div",
        { class: "preview", "data-testid": "preview" },
        h("h2", {}, strings.previewTitle(title)),
        h("div", { class: "preview-stage" }, video),
        status,
        h("div", { class: "preview-controls" },
          h("label", {}, strings.camera, " ", cameraSelect),
          h("label", {}, strings.microphone, " ", micSelect),
          micToggle, camToggle),
        h("div", { class: "preview-actions" }, joinButton, noDevices),
      ),
    );
    labels();
    if (!navigator.mediaDevices?.getUserMedia) {
      replaceChildren(status, errorBox(strings.mediaUnsupported));
      return;
    }
    void open();
  });
}

/** Calls `onLevel` with the microphone's level (0–1) about 10 times a second; returns a stop. */
export function watchLevel(stream: MediaStream, onLevel: (level: number) => void): () => void {
  const track = stream.getAudioTracks()[0];
  if (!track || typeof AudioContext === "undefined") return () => undefined;
  let ctx: AudioContext;
  try {
    ctx = new AudioContext();
  } catch {
    return () => undefined;
  }
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const timer = window.setInterval(() => {
    if (ctx.state === "suspended") void ctx.resume().catch(() => undefined);
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    onLevel(track.enabled ? Math.sqrt(sum / data.length) : 0);
  }, 100);
  return () => {
    window.clearInterval(timer);
    source.disconnect();
    void ctx.close().catch(() => undefined);
  };
}
