import { h } from "../dom";
import type { Session } from "../session";
import { strings } from "../strings";

/** The bar at the top of every signed-in page. */
export function topBar(session: Session, signOut: () => void, ...middle: (Node | string)[]): HTMLElement {
  const user = session.user;
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "/" }, strings.appName),
    h("div", { class: "topbar-middle" }, ...middle),
    user
      ? h(
          "div",
          { class: "whoami", "data-testid": "whoami" },
          h("span", { class: "name" }, user.name),
          h("span", { class: "hospital" }, strings.hospitalWithTier(user.hospital.name, user.hospital.tier)),
        )
      : null,
    h("button", { type: "button", class: "link", onclick: signOut, "data-testid": "sign-out" }, strings.signOut),
  );
}
