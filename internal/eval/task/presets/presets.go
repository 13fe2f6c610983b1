// Package presets ships lm-eval task files with a sample of their data in
// the binary, so `crucible eval --task social_iqa` runs with nothing
// downloaded. The task files are lm-evaluation-harness's own, reading the
// embedded rows (data/README.md gives their sources and licences).
//
// A preset may have variants, "<preset>:<variant>": the same rows under
// another task file (variants/<preset>.<variant>.yaml), such as
// social_iqa:mcq, Social IQa with the prompt of Crucible's mcq kind.
package presets

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"crucible/internal/eval/task"
)

//go:embed *.yaml variants data
var files embed.FS

// Names lists the presets, sorted.
func Names() []string {
	entries, err := fs.Glob(files, "*.yaml")
	if err != nil {
		panic(err) // the pattern is constant
	}
	names := make([]string, len(entries))
	for k, e := range entries {
		names[k] = strings.TrimSuffix(e, ".yaml")
	}
	slices.Sort(names)
	return names
}

// Variants lists the variants of preset name, "<name>:<variant>", sorted.
func Variants(name string) []string {
	if strings.ContainsAny(name, "*?[\\") {
		return nil // a pattern, not a name
	}
	entries, err := fs.Glob(files, "variants/"+name+".*.yaml")
	if err != nil {
		return nil
	}
	out := make([]string, len(entries))
	for k, e := range entries {
		out[k] = name + ":" + strings.TrimSuffix(strings.TrimPrefix(e, "variants/"+name+"."), ".yaml")
	}
	slices.Sort(out)
	return out
}

// Load parses preset name (or variant "<preset>:<variant>") and reads its
// embedded rows. The few-shot pool is
// the evaluation split itself (a doc never its own example) unless the task
// names another split with embedded files.
func Load(name string) (*task.Config, *task.Data, error) {
	file := name + ".yaml"
	if base, variant, ok := strings.Cut(name, ":"); ok {
		file = "variants/" + base + "." + variant + ".yaml"
		if !slices.Contains(Variants(base), name) {
			return nil, nil, fmt.Errorf("no preset variant %q (variants of %s: %s)", name, base, strings.Join(Variants(base), ", "))
		}
	}
	src, err := files.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("no task file or preset %q (presets: %s)", name, strings.Join(Names(), ", "))
	}
	cfg, err := task.Parse(file, src)
	if err != nil {
		return nil, nil, err
	}
	d := &task.Data{}
	if d.Eval, err = readSplit(cfg, cfg.EvalSplit()); err != nil {
		return nil, nil, err
	}
	if split := cfg.FewshotSplitName(); split == cfg.EvalSplit() {
		d.Fewshot, d.SameSplit = d.Eval, true
	} else if d.Fewshot, err = readSplit(cfg, split); err != nil {
		return nil, nil, err
	}
	return cfg, d, nil
}

func readSplit(cfg *task.Config, split string) ([]task.Row, error) {
	names, ok := cfg.DataFiles[split]
	if !ok {
		return nil, fmt.Errorf("preset %s: no files for split %q", cfg.Task, split)
	}
	var rows []task.Row
	for _, n := range names {
		f, err := files.Open(path.Clean(n))
		if err != nil {
			return nil, err
		}
		r, err := task.ReadJSONL(n, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// Open resolves a task reference: a path to a task file (read with its
// data, as task.Config.LoadData) or a preset name. dataFile and
// fewshotFile, when set, replace the evaluation and few-shot rows;
// numFewshot below 0 is the task's num_fewshot.
func Open(ref, dataFile, fewshotFile string, numFewshot int) (*task.Config, *task.Data, error) {
	if _, err := os.Stat(ref); err == nil {
		cfg, err := task.Load(ref)
		if err != nil {
			return nil, nil, err
		}
		if numFewshot < 0 {
			numFewshot = cfg.NumFewshot
		}
		d, err := cfg.LoadData(dataFile, fewshotFile, numFewshot)
		if err != nil {
			return nil, nil, err
		}
		return cfg, d, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	cfg, d, err := Load(ref)
	if err != nil {
		return nil, nil, err
	}
	if dataFile != "" {
		if d.Eval, err = task.ReadFile(dataFile); err != nil {
			return nil, nil, err
		}
		if d.SameSplit {
			d.Fewshot = d.Eval
		}
	}
	if fewshotFile != "" {
		if d.Fewshot, err = task.ReadFile(fewshotFile); err != nil {
			return nil, nil, err
		}
		d.SameSplit = false
	}
	return cfg, d, nil
}
