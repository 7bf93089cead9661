// Package schema embeds the CUE schema that every layout is unified with.
package schema

import "embed"

// FS holds the schema's .cue files.
//
//go:embed *.cue
var FS embed.FS

// File is the name of the file in FS that defines #Layout.
const File = "layout.cue"
