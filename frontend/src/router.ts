/** Client-side routes over the History API; the server answers index.html for each of them. */

export interface Page {
  el: HTMLElement;
  dispose?(): void;
  /** Instead of showing this page, go there (replacing the history entry). */
  redirect?: string;
}

export interface Route {
  pattern: RegExp;
  /** Pages that need no login (the login page itself). */
  public?: boolean;
  render(params: string[], url: URL): Page | Promise<Page>;
}

export class Router {
  private current: Page | null = null;
  private generation = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly routes: Route[],
    private readonly guard: (route: Route, url: URL) => string | null,
    private readonly notFound: () => Page,
  ) {
    window.addEventListener("popstate", () => void this.render());
    document.addEventListener("click", (event) => this.interceptLink(event));
  }

  navigate(path: string, options: { replace?: boolean } = {}): void {
    if (options.replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    void this.render();
  }

  async render(): Promise<void> {
    const url = new URL(location.href);
    const generation = ++this.generation;
    const route = this.routes.find((r) => r.pattern.test(url.pathname));
    if (route) {
      const redirect = this.guard(route, url);
      if (redirect) {
        history.replaceState(null, "", redirect);
        return this.render();
      }
    }
    this.current?.dispose?.();
    this.current = null;
    const match = route ? route.pattern.exec(url.pathname) : null;
    const page = route && match ? await route.render(match.slice(1), url) : this.notFound();
    if (generation !== this.generation) {
      page.dispose?.();
      return;
    }
    if (page.redirect) {
      page.dispose?.();
      history.replaceState(null, "", page.redirect);
      return this.render();
    }
    this.current = page;
    this.root.replaceChildren(page.el);
  }

  private interceptLink(event: MouseEvent): void {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = (event.target as Element | null)?.closest?.("a");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    const href = anchor.getAttribute("href");
    if (!href || !href.startsWith("/") || href.startsWith("//")) return;
    if (href.startsWith("/api/") || href.startsWith("/dicomweb/")) return;
    event.preventDefault();
    this.navigate(href);
  }
}

/** Only same-site paths are followed after login (no open redirect). */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  if (next.startsWith("/login")) return "/";
  return next;
}
