// Validates GraphQL documents against a schema, with graphql-js's own
// `validate` (the rules a GraphQL server applies before running a query).
//   node validate-graphql.js SCHEMA.json|SCHEMA.graphql DOCUMENTS.json
// SCHEMA.json is an introspection result (GitHub's published SDL defines a
// few fields twice, which buildSchema refuses; its schema.json does not).
// DOCUMENTS.json: [{"name": "...", "query": "..."}]. Prints one line per
// document and exits 1 if any is invalid.
const fs = require("fs");
const { buildClientSchema, buildSchema, parse, validate } = require("graphql");
const [schemaPath, documentsPath] = process.argv.slice(2);
const text = fs.readFileSync(schemaPath, "utf8");
const schema = schemaPath.endsWith(".json")
  ? buildClientSchema(JSON.parse(text).data || JSON.parse(text))
  : buildSchema(text);
let failed = 0;
for (const { name, query } of JSON.parse(fs.readFileSync(documentsPath, "utf8"))) {
  let errors;
  try {
    errors = validate(schema, parse(query));
  } catch (e) {
    errors = [e];
  }
  if (errors.length) {
    failed += 1;
    console.log(`${name}: INVALID\n  ${errors.map((e) => e.message).join("\n  ")}`);
  } else {
    console.log(`${name}: valid`);
  }
}
process.exit(failed ? 1 : 0);
