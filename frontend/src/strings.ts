/**
 * Every user-visible string of the browser app. A translation replaces this one object
 * (same keys); nothing else in the app holds words shown to a user.
 */

const tierNames: Record<string, string> = {
  central: "central",
  provincial: "provincial",
  district: "district",
  commune: "commune",
};

const roleNames: Record<string, string> = {
  host: "Host",
  presenter: "Presenter",
  participant: "Participant",
  observer: "Observer",
};

const statusNames: Record<string, string> = {
  scheduled: "Scheduled",
  live: "Live",
  ended: "Ended",
  cancelled: "Cancelled",
};

export const strings = {
  appName: "Hoichan",
  appTagline: "Multi-hospital case consultation",

  // Login
  loginTitle: "Sign in",
  email: "E-mail",
  password: "Password",
  signIn: "Sign in",
  signingIn: "Signing in…",
  signOut: "Sign out",
  loginFailed: "Wrong e-mail or password.",
  sessionExpired: "Your session has ended. Please sign in again to go back where you were.",

  // Errors shown in place
  networkError: "The server cannot be reached. Check the connection and try again.",
  serverError: (message: string) => `The server answered: ${message}`,
  retry: "Try again",
  back: "Back",

  // Home
  homeTitle: "Upcoming consultations",
  homeEmpty: "No upcoming consultation.",
  loading: "Loading…",
  join: "Join",
  hostHospital: "Host hospital",
  yourRole: "Your role",
  cases: (n: number) => (n === 1 ? "1 case" : `${n} cases`),
  invitees: (n: number) => (n === 1 ? "1 invitation" : `${n} invitations`),
  timeWindow: (start: string, end: string, zone: string) => `${start} – ${end} (${zone})`,
  role: (role: string) => roleNames[role] ?? role,
  status: (status: string) => statusNames[status] ?? status,
  tier: (tier: string) => tierNames[tier] ?? tier,
  hospitalWithTier: (name: string, tier: string) => `${name} · ${tierNames[tier] ?? tier}`,

  // Room
  roomJoining: "Joining the room…",
  lobbyTitle: "Waiting room",
  lobbyWaiting: "The host has been told you are here. You will enter as soon as you are admitted.",
  leave: "Leave",
  reconnecting: "Connection lost, reconnecting…",
  participants: "In the room",
  waitingToEnter: "Waiting to enter",
  admit: "Admit",
  admitFailed: (message: string) => `Could not admit: ${message}`,
  you: "you",
  memberReconnecting: "reconnecting",
  controlHolder: "in control",
  roomDenied: "The host did not admit you to this consultation.",
  roomRemoved: (reason: string) =>
    reason ? `The host removed you from the room: ${reason}` : "The host removed you from the room.",
  roomReplaced: "You joined this room from another window; this one has left.",
  roomEnded: "The consultation has ended.",
  roomClosed: "This consultation is over or was cancelled.",
  roomTooEarly: "The room opens shortly before the consultation starts.",
  roomTooLate: "This consultation is over.",
  roomNotFound: "This consultation does not exist or you are not invited.",
  roomError: (message: string) => `Cannot enter the room: ${message}`,
  backHome: "Back to the consultations",

  // Shared view and control
  syncDriving: "You are driving the shared view.",
  syncFollowing: (name: string | null) => (name ? `Following ${name}'s view.` : "Following the shared view."),
  syncLookingAround: "You are looking around on your own.",
  follow: "Follow",
  requestControl: "Request control",
  controlRequested: "Control requested…",
  releaseControl: "Release control",
  takeBackControl: "Take back control",
  giveControl: "Give control",
  asksForControl: (name: string) => `${name} asks for control of the viewer`,
  controlFailed: (message: string) => `Control: ${message}`,

  // Case and series
  caseHeading: (name: string, id: string) => `Case: ${name} (${id})`,
  clinicalQuestion: "Clinical question:",
  studies: "Studies",
  studyNotAvailable: "This study is not in the imaging store yet.",
  seriesLabel: (n: number | null, description: string, count: number) =>
    `${n === null ? "" : `#${n} `}${description || "Series"} · ${count} ${count === 1 ? "image" : "images"}`,
  noSeries: "No image series.",
  personName: (dicomName: string) => dicomName.replace(/\^+/g, " ").trim(),

  // Viewer
  viewerLoading: "Loading images…",
  viewerEmpty: "Choose a series to view.",
  viewerLoadFailed: (message: string) => `The images could not be loaded: ${message}`,
  imagePosition: (index: number, count: number) => `Im ${index + 1} / ${count}`,
  windowLevel: (width: number, center: number) => `W ${Math.round(width)} L ${Math.round(center)}`,
  zoomLabel: (zoom: number) => `Zoom ${zoom.toFixed(2)}×`,
  toolWindowLevel: "Window",
  toolPan: "Pan",
  toolZoom: "Zoom",
  toolScroll: "Scroll",
  leftButtonTool: "Left mouse button",
  presets: "Presets",
  presetLung: "Lung",
  presetMediastinum: "Mediastinum",
  presetBone: "Bone",
  presetBrain: "Brain",
  presetDefault: "Default",
  reset: "Reset",
  viewerHelp:
    "Wheel or ↑/↓: scroll · drag: window/level · right drag: zoom · middle drag: pan · 1–4: presets · 0: file window · R: reset",
  previousImage: "Previous image",
  nextImage: "Next image",
  imageSlider: "Image",
};

export type Strings = typeof strings;
