import { h, replaceChildren } from "../dom";
import type { Session, User } from "../session";
import { errorText } from "./load";
import {
  isLanguage,
  language,
  LANGUAGE_NAMES,
  LANGUAGE_STORAGE_KEY,
  rememberLanguage,
  strings,
  type Language,
} from "../strings";

/**
 * After sign-in and on each page load: the account's language wins over this browser's; an
 * account that has none yet takes the one chosen here (on the sign-in page, say).
 */
export async function settleLanguage(session: Session, store: Storage = window.localStorage): Promise<void> {
  const user = session.user;
  if (!user) return;
  if (user.language) {
    rememberLanguage(user.language);
    return;
  }
  const chosen = store.getItem(LANGUAGE_STORAGE_KEY);
  if (!isLanguage(chosen)) return;
  try {
    session.replaceUser(await session.json<User>("/api/me", { method: "PATCH", json: { language: chosen } }));
  } catch {
    // Kept in this browser; saved with the account when the user next picks a language.
  }
}

/**
 * The language switch on every page. Signed in, the choice is saved with the account first,
 * so that it follows the user to other machines; then the page is drawn again in it.
 */
export function languageSwitch(session: Session | null): HTMLElement {
  const problem = h("span", { class: "error-inline", role: "alert" });
  const select = h(
    "select",
    { "aria-label": strings.language, "data-testid": "language" },
    ...(Object.keys(LANGUAGE_NAMES) as Language[]).map((l) =>
      h("option", { value: l, selected: l === language, lang: l }, LANGUAGE_NAMES[l]),
    ),
  );
  select.addEventListener("change", async () => {
    const chosen = select.value;
    if (!isLanguage(chosen)) return;
    select.disabled = true;
    replaceChildren(problem);
    try {
      if (session?.isSignedIn()) {
        session.replaceUser(await session.json<User>("/api/me", { method: "PATCH", json: { language: chosen } }));
      }
      rememberLanguage(chosen);
    } catch (err) {
      select.value = language;
      replaceChildren(problem, errorText(err));
    } finally {
      select.disabled = false;
    }
  });
  return h("span", { class: "language-switch" }, select, problem);
}

/** The bar at the top of every signed-in page. */
export function topBar(session: Session, signOut: () => void, ...middle: (Node | string)[]): HTMLElement {
  const user = session.user;
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "/" }, strings.appName),
    h(
      "div",
      { class: "topbar-middle" },
      ...middle,
      user?.roles.includes("admin") ? h("a", { href: "/admin/audit", "data-testid": "audit-link" }, strings.auditTitle) : null,
    ),
    user
      ? h(
          "div",
          { class: "whoami", "data-testid": "whoami" },
          h("span", { class: "name" }, user.name),
          h("span", { class: "hospital" }, strings.hospitalWithTier(user.hospital.name, user.hospital.tier)),
        )
      : null,
    languageSwitch(session),
    h("button", { type: "button", class: "link", onclick: signOut, "data-testid": "sign-out" }, strings.signOut),
  );
}
