// Validates the KEDA objects (ScaledObject, TriggerAuthentication) of rendered manifests against
// KEDA's schema, as published in @kubernetes-models/keda:
// - the package's validator: types, required fields, enums and formats;
// - unknown fields, which that validator lets through: every field must be declared by KEDA's
//   API types (read from the package's type declarations), so a misspelt `maxReplicaCount` or
//   a field at the wrong level fails instead of being ignored by the cluster.
//
// usage: node keda-validate.mjs <node_modules dir> <manifest.yaml>...
// Prints one line per object; exits 1 when any object is invalid.

import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: node keda-validate.mjs <node_modules dir> <manifest.yaml>...");
  process.exit(2);
}

const load = (specifier) => import(pathToFileURL(path.join(modules, specifier)).href);
const yaml = (await load("js-yaml/dist/js-yaml.mjs")).default;
const typesDir = path.join(modules, "@kubernetes-models/keda/keda.sh/v1alpha1");

const KINDS = {
  ScaledObject: "ScaledObject",
  TriggerAuthentication: "TriggerAuthentication",
};

// --- The declared fields of KEDA's API types, from the package's .d.ts files. ---

const declarations = new Map();

/** The fields of the type declared in `<typesDir>/<name>.d.ts`: name → type file or null. */
function declaredFields(name) {
  if (declarations.has(name)) return declarations.get(name);
  const file = path.join(typesDir, `${name}.d.ts`);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/import \{ (\w+) \} from "\.\/(\w+)\.js";/g)) {
    imports.set(m[1], m[2]);
  }
  const alias = text.match(/export type I\w+ = (\w+);/);
  if (!text.includes("export interface") && alias) {
    const target = imports.get(alias[1]);
    if (!target) throw new Error(`${file}: cannot resolve ${alias[1]}`);
    const fields = declaredFields(target);
    declarations.set(name, fields);
    return fields;
  }
  const start = text.indexOf("export interface");
  if (start < 0) throw new Error(`${file}: no interface`);
  const open = text.indexOf("{", start);
  const fields = new Map();
  let depth = 0;
  for (const line of text.slice(open).split("\n")) {
    const trimmed = line.trim();
    if (depth === 1) {
      const m = trimmed.match(/^"([^"]+)"\??: (.+?);?$/);
      if (m) fields.set(m[1], nestedType(m[2], imports));
    }
    depth += (line.match(/\{/g) || []).length - (line.match(/\}/g) || []).length;
    if (depth === 0) break;
  }
  declarations.set(name, fields);
  return fields;
}

/** The KEDA type a field holds (its element type for arrays), or null for anything else. */
function nestedType(type, imports) {
  const element = type.match(/^Array<(\w+)>$/);
  const name = element ? element[1] : type;
  return imports.get(name) ?? null;
}

/** Paths of the fields of `value` that `typeName` does not declare, recursively. */
function unknownFields(value, typeName, where) {
  const problems = [];
  if (Array.isArray(value)) {
    value.forEach((item, i) => problems.push(...unknownFields(item, typeName, `${where}[${i}]`)));
    return problems;
  }
  if (value === null || typeof value !== "object") return problems;
  const fields = declaredFields(typeName);
  for (const [key, child] of Object.entries(value)) {
    if (!fields.has(key)) {
      problems.push(`${where}.${key}: unknown field (not in KEDA's ${typeName})`);
    } else if (fields.get(key)) {
      problems.push(...unknownFields(child, fields.get(key), `${where}.${key}`));
    }
  }
  return problems;
}

// --- Validation of each object. ---

const models = {};
for (const kind of Object.keys(KINDS)) {
  models[kind] = (await load(`@kubernetes-models/keda/keda.sh/v1alpha1/${kind}.js`))[kind];
}

let checked = 0;
let failed = 0;
for (const file of files) {
  if (!existsSync(file)) {
    console.error(`${file}: no such file`);
    process.exit(2);
  }
  for (const doc of yaml.loadAll(readFileSync(file, "utf8"))) {
    if (!doc || !String(doc.apiVersion ?? "").startsWith("keda.sh/")) continue;
    const label = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    const Model = models[doc.kind];
    const problems = [];
    if (!Model) {
      problems.push(`kind ${doc.kind} is not checked here`);
    } else if (doc.apiVersion !== Model.apiVersion) {
      problems.push(`apiVersion ${doc.apiVersion}, expected ${Model.apiVersion}`);
    } else {
      try {
        new Model(doc).validate();
      } catch (error) {
        problems.push(String(error.message ?? error));
      }
      const { metadata: _metadata, ...rest } = doc;
      problems.push(...unknownFields(rest, KINDS[doc.kind], doc.kind));
    }
    checked += 1;
    if (problems.length > 0) {
      failed += 1;
      console.log(`FAIL ${label}`);
      for (const p of problems) console.log(`     ${p}`);
    } else {
      console.log(`ok   ${label}`);
    }
  }
}
if (checked === 0) {
  console.log("no KEDA objects found");
  process.exit(1);
}
process.exit(failed > 0 ? 1 : 0);
