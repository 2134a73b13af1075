// Just enough of a DOM for the viewer's components (dom.ts's `h`, listeners, data
// attributes) to be built and driven in Node: the unit tests run without a browser.
import { vi } from "vitest";

type Listener = (event: { type: string; preventDefault(): void }) => void;

class FakeEvents {
  readonly listeners = new Map<string, Set<Listener>>();

  addEventListener(type: string, fn: Listener): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(fn);
  }

  removeEventListener(type: string, fn: Listener): void {
    this.listeners.get(type)?.delete(fn);
  }

  /** Calls the listeners of `type`, as the browser would for a user's action. */
  fire(type: string): void {
    for (const fn of [...(this.listeners.get(type) ?? [])]) fn({ type, preventDefault: () => undefined });
  }

  listenerCount(type: string): number {
    return this.listeners.get(type)?.size ?? 0;
  }
}

export class FakeNode extends FakeEvents {
  children: FakeNode[] = [];
  textContent = "";

  appendChild(child: FakeNode): FakeNode {
    this.children.push(child);
    return child;
  }

  append(...children: FakeNode[]): void {
    this.children.push(...children);
  }

  replaceChildren(...children: FakeNode[]): void {
    this.children = children;
  }
}

export class FakeElement extends FakeNode {
  readonly attributes = new Map<string, string>();
  readonly dataset: Record<string, string> = {};
  readonly style: Record<string, string> = {};
  readonly classList = { toggle: () => undefined };
  hidden = false;
  title = "";
  value = "";
  focused = 0;

  constructor(readonly tagName: string) {
    super();
  }

  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value);
    if (name === "title") this.title = value;
    if (name === "hidden") this.hidden = true;
    if (name.startsWith("data-")) this.dataset[name.slice(5).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
  }

  getAttribute(name: string): string | null {
    return this.attributes.get(name) ?? null;
  }

  focus(): void {
    this.focused++;
  }

  /** Every element below this one (itself included), depth first. */
  all(): FakeElement[] {
    return [this, ...this.children.flatMap((c) => (c instanceof FakeElement ? c.all() : []))];
  }

  text(): string {
    return this.textContent || this.children.map((c) => (c instanceof FakeElement ? c.text() : c.textContent)).join("");
  }
}

export const fakeWindow = new FakeEvents();

/** Installs the fake DOM globals (in the calling test file only). */
export function installFakeDom(): void {
  vi.stubGlobal("Node", FakeNode);
  vi.stubGlobal("document", {
    activeElement: null,
    documentElement: new FakeElement("html"),
    createElement: (tag: string) => new FakeElement(tag),
    createTextNode: (text: string) => Object.assign(new FakeNode(), { textContent: text }),
  });
  vi.stubGlobal("window", fakeWindow);
}
