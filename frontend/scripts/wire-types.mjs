// JSON Schema (standard input) → TypeScript (standard output), by json-schema-to-typescript.
// Run through `make wire-types` (signaling/wire_types.py), which feeds it the room protocol's
// schema made by pydantic from signaling/schemas.py.
import { compile } from "json-schema-to-typescript";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const schema = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const banner = process.argv[2] ?? "";

const ts = await compile(schema, schema.title, {
  bannerComment: banner,
  additionalProperties: false,
  declareExternallyReferenced: true,
  enableConstEnums: false,
  format: true,
  // Bounded arrays up to this length become tuples (a pan, a point); longer ones stay arrays.
  maxItems: 3,
  strictIndexSignatures: true,
  unknownAny: true,
  unreachableDefinitions: false,
  style: { printWidth: 120, semi: true, singleQuote: false, trailingComma: "all" },
});
process.stdout.write(ts);
