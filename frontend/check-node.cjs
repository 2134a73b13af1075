// Run by `make` before npm: says in one line when this Node.js is not one the frontend's
// build (Vite) and tests (Vitest) run on, instead of a failure deep inside them. The
// versions are package.json's "engines" range, whose alternatives are "^X.Y.Z" or
// ">=X.Y.Z". Plain old syntax on purpose: it must run on the old Node.js it refuses.
"use strict";

var range = require("./package.json").engines.node;

function parse(version) {
  return version.replace(/^v/, "").split(".").map(Number);
}

function atLeast(have, want) {
  for (var i = 0; i < 3; i++) {
    if (have[i] !== want[i]) return have[i] > want[i];
  }
  return true;
}

function satisfies(have, alternative) {
  var m = /^\s*(\^|>=)\s*(\d+\.\d+\.\d+)\s*$/.exec(alternative);
  if (!m) throw new Error("check-node.cjs reads only ^X.Y.Z or >=X.Y.Z, not " + alternative);
  var want = parse(m[2]);
  return atLeast(have, want) && (m[1] === ">=" || have[0] === want[0]);
}

var have = parse(process.versions.node);
if (!range.split("||").some(function (alternative) { return satisfies(have, alternative); })) {
  console.error("Node.js " + process.versions.node + " is not one frontend/ builds on: it needs " +
    range + " (frontend/package.json, \"engines\"); install Node.js 22 or 24 LTS");
  process.exit(1);
}
