// The wire format, both ways: every object Python writes (js/tests/fixtures/from_python.json,
// made by tests/support/js_fixture.py) has exactly the fields its typedef in src/wire.js
// declares, every required one present, and every declared field is one Python writes.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import fromPython from "./fixtures/from_python.json";

/** Each @typedef of a source file: its fields, and which of them are optional ([name]). */
export function typedefs(source) {
  const types = {};
  for (const block of source.match(/\/\*\*[\s\S]*?\*\//g) ?? []) {
    const name = block.match(/@typedef \{object\} (\w+)/)?.[1];
    if (!name) continue;
    const fields = [...block.matchAll(/@property \{[^}]*\} (\[?)(\w+)\]?/g)];
    types[name] = { all: fields.map((m) => m[2]), optional: fields.filter((m) => m[1]).map((m) => m[2]) };
  }
  return types;
}

const types = typedefs(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../src/wire.js"), "utf8"));
const wire = fromPython.wire;
const versions = wire.message.versions.filter(Boolean);
const samples = {
  Token: [wire.token, ...wire.message.tokens, ...versions.flatMap((v) => v.tokens)],
  Round: [wire.round, ...wire.message.rounds],
  Stats: [wire.stats, wire.message.stats],
  Message: [wire.message, wire.user],
  Version: versions,
};

describe("the wire format Python writes and the JS typedefs", () => {
  for (const [name, objects] of Object.entries(samples)) {
    it(`${name}: no field either side does not know`, () => {
      const type = types[name];
      expect(type, `no @typedef ${name} in src/wire.js`).toBeDefined();
      const required = type.all.filter((field) => !type.optional.includes(field));
      for (const object of objects) {
        expect(Object.keys(object).filter((key) => !type.all.includes(key)), `fields of a ${name} not typed in src/wire.js`).toEqual([]);
        if (object !== wire.user) expect(required.filter((field) => !(field in object)), `${name} fields Python left out`).toEqual([]);
      }
      const written = new Set(objects.flatMap((object) => Object.keys(object)));
      expect(type.all.filter((field) => !written.has(field)), `${name} fields Python never writes`).toEqual([]);
    });
  }
});
