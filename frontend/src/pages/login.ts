import { errorBox, h, replaceChildren } from "../dom";
import type { Page } from "../router";
import { ApiError, type Session } from "../session";
import { strings } from "../strings";
import { languageSwitch } from "./chrome";

export function loginPage(session: Session, url: URL, done: (next: string | null) => void): Page {
  const next = url.searchParams.get("next");
  const expired = url.searchParams.get("expired") === "1";
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, strings.signIn);
  const message = h("div", { class: "form-message", "aria-live": "polite" });
  if (expired) replaceChildren(message, h("div", { class: "notice" }, strings.sessionExpired));

  const form = h(
    "form",
    { class: "login-form", novalidate: false },
    languageSwitch(null),
    h("h1", {}, strings.appName),
    h("p", { class: "tagline" }, strings.appTagline),
    h("h2", {}, strings.loginTitle),
    h("label", {}, strings.email, email),
    h("label", {}, strings.password, password),
    message,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = strings.signingIn;
    replaceChildren(message);
    try {
      await session.login(email.value.trim(), password.value);
      done(next);
    } catch (err) {
      const text =
        err instanceof ApiError
          ? err.status === 401
            ? strings.loginFailed
            : strings.apiError(err.code, err.message)
          : strings.networkError;
      replaceChildren(message, errorBox(text));
      password.select();
    } finally {
      submit.disabled = false;
      submit.textContent = strings.signIn;
    }
  });
  queueMicrotask(() => email.focus());
  return { el: h("main", { class: "page login-page" }, form) };
}
