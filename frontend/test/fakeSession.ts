// A Session answering REST calls from a queue, and a lookup by data-testid, for the panels' tests.
import type { FakeElement } from "./fakeDom";

/** The session's REST calls, answered from a queue. */
export class FakeSession {
  readonly calls: { path: string; method: string; json?: unknown }[] = [];
  readonly answers: (unknown | Error)[] = [];

  async json<T>(path: string, init: { method?: string; json?: unknown } = {}): Promise<T> {
    this.calls.push({ path, method: init.method ?? "GET", json: init.json });
    const answer = this.answers.shift();
    if (answer instanceof Error) throw answer;
    return answer as T;
  }

  async fetch(path: string): Promise<Response> {
    this.calls.push({ path, method: "GET" });
    return { ok: true, status: 200, statusText: "OK", blob: async () => "PDF" } as unknown as Response;
  }
}

export function find(root: FakeElement, testid: string): FakeElement | undefined {
  return root.all().find((e) => e.dataset.testid === testid);
}
