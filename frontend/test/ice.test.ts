import { describe, expect, it } from "vitest";

import { credentialsExpiry, IceServers } from "../src/room/ice";

const turn = (expirySeconds: number, user = 7): RTCIceServer => ({
  urls: ["turn:turn.example:3478", "turns:turn.example:5349?transport=tcp"],
  username: `${expirySeconds}:${user}`,
  credential: "c2VjcmV0",
});

describe("credentialsExpiry", () => {
  it("is the soonest `<unix expiry>:` of the list, in ms", () => {
    expect(credentialsExpiry([turn(2_000), turn(1_000)])).toBe(1_000_000);
  });

  it("is Infinity without TURN credentials", () => {
    expect(credentialsExpiry([])).toBe(Infinity);
    expect(credentialsExpiry([{ urls: "stun:stun.example" }])).toBe(Infinity);
  });
});

describe("IceServers", () => {
  it("hands out the newest list, without renewing while it is valid", async () => {
    let renewals = 0;
    const ice = new IceServers(async () => renewals++, () => 0);
    expect(await ice.current()).toEqual([]);
    ice.set([turn(3_600)]);
    expect(await ice.current()).toEqual([turn(3_600)]);
    // A renewed join token's list replaces the old one for the next connection.
    ice.set([turn(7_200)]);
    expect(await ice.current()).toEqual([turn(7_200)]);
    expect(renewals).toBe(0);
  });

  it("renews credentials about to expire before handing them out", async () => {
    const ice: IceServers = new IceServers(async () => ice.set([turn(7_200)]), () => 3_590_000);
    ice.set([turn(3_600)]);
    expect(await ice.current()).toEqual([turn(7_200)]);
  });

  it("keeps the old list when the renewal fails", async () => {
    const ice = new IceServers(() => Promise.reject(new Error("too late")), () => 3_600_000);
    ice.set([turn(3_600)]);
    expect(await ice.current()).toEqual([turn(3_600)]);
  });
});
