package app

import (
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/taskkind"
	"crucible/internal/kind"
)

// Kinds builds the registry of competition kinds a process runs: the
// built-in ones, reaching models through egress and judging patches with
// repos, then extra (Config.Kinds). It is the one place that lists them.
func Kinds(egress kinds.Egress, repos kinds.RepoSource, extra ...kind.Kind) (*kind.Registry, error) {
	builtin := append(kinds.Builtin(egress, repos),
		taskkind.Task{Egress: egress}, // lm-eval task files and presets (internal/eval/task)
	)
	return kind.NewRegistry(append(builtin, extra...)...)
}
