package plan

import _ "embed"

// Schema is the JSON Schema (draft 2020-12) of the plan's JSON form,
// format 2: plan.schema.json, which documents every field.
//
//go:embed plan.schema.json
var Schema []byte
