// Package rules holds the detection rules that ship inside the vigil
// binary: threshold/ (threshold and count rules) and, with the Sigma engine,
// Vigil's IoT Sigma rule pack. Files here are data; the engines that read
// them live under detect/.
package rules

import "embed"

// Threshold holds the built-in threshold and count rules (threshold/*.yaml).
//
//go:embed threshold/*.yaml
var Threshold embed.FS
