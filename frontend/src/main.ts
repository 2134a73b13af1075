import "./styles.css";

import { h } from "./dom";
import { auditPage } from "./pages/audit";
import { coordinatorRoutes } from "./pages/coordinator";
import { homePage } from "./pages/home";
import { settleLanguage } from "./pages/chrome";
import { loginPage } from "./pages/login";
import { minutesPage } from "./pages/minutes";
import { roomPage } from "./pages/room";
import { Router, safeNext, type Route } from "./router";
import { browserLock, Session, SESSION_STORAGE_KEY } from "./session";
import { strings } from "./strings";

const session = new Session({
  store: window.localStorage,
  fetch: (input, init) => window.fetch(input, init),
  lock: browserLock(),
});

function here(): string {
  return location.pathname + location.search;
}

function loginUrl(next: string, expired: boolean): string {
  const params = new URLSearchParams();
  if (next && next !== "/") params.set("next", next);
  if (expired) params.set("expired", "1");
  const query = params.toString();
  return `/login${query ? `?${query}` : ""}`;
}

const signOut = async () => {
  await session.logout();
  router.navigate("/login", { replace: true });
};

const routes: Route[] = [
  {
    pattern: /^\/login$/,
    public: true,
    render: (_params, url) =>
      loginPage(session, url, (next) => {
        router.navigate(safeNext(next), { replace: true });
        void settleLanguage(session);
      }),
  },
  { pattern: /^\/$/, render: () => homePage(session, () => void signOut()) },
  {
    pattern: /^\/consultations\/(\d+)\/room$/,
    render: ([id]) =>
      roomPage(session, Number(id), () => void signOut(), (path) => router.navigate(path)),
  },
  {
    pattern: /^\/consultations\/(\d+)\/minutes$/,
    render: ([id]) => minutesPage(session, Number(id), () => void signOut()),
  },
  {
    pattern: /^\/admin\/audit$/,
    render: (_params, url) => auditPage(session, url, () => void signOut(), (path) => router.navigate(path)),
  },
  ...coordinatorRoutes(session, () => void signOut(), (path, options) => router.navigate(path, options)),
];

const router = new Router(
  document.getElementById("app")!,
  routes,
  (route, url) => {
    if (route.public) return session.isSignedIn() && url.pathname === "/login" ? safeNext(url.searchParams.get("next")) : null;
    return session.isSignedIn() ? null : loginUrl(url.pathname + url.search, false);
  },
  () => ({
    el: h("main", { class: "page" }, h("p", {}, strings.roomNotFound), h("a", { class: "button", href: "/" }, strings.backHome)),
  }),
);

// The session died (refresh refused): back to the login page, which returns here after.
session.onExpired(() => {
  if (location.pathname === "/login") return;
  router.navigate(loginUrl(here(), true), { replace: true });
});

// Signed out in another tab.
window.addEventListener("storage", (event) => {
  if (event.key === SESSION_STORAGE_KEY && event.newValue === null && location.pathname !== "/login") {
    router.navigate(loginUrl(here(), true), { replace: true });
  }
});

document.title = strings.appName;
void settleLanguage(session);
void router.render();
