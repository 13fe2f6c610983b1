package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"crucible/internal/baseline"
	"crucible/internal/eval/mcq"
)

// ArtifactPolicyFile names the policy file of a baseline artifact: the
// directory `crucible model-server --artifact DIR` serves as a model, so
// tests launch the baseline where a real server would load weights.
const ArtifactPolicyFile = "crucible-policy.json"

// maxArtifactPolicyBytes bounds the policy file.
const maxArtifactPolicyBytes = 64 << 10

// ArtifactPolicy is the content of crucible-policy.json. File names are
// relative to the artifact directory and may not leave it.
//
//	{"policy": "oracle", "dataset": "siqa.jsonl", "name": "tiny-model"}
//	{"policy": "oracle", "task": "social_iqa.yaml", "data": "rows.jsonl"}
type ArtifactPolicy struct {
	// Policy is the one baseline policy served: a multiple-choice or
	// roleplay one (model-server --policy), or with Task or Responses a
	// task one (oracle, first, random, replay).
	Policy string `json:"policy"`
	// Dataset is the multiple-choice answer key (model-server --answers).
	Dataset string `json:"dataset,omitempty"`
	// Task is an lm-eval task file; Data, required with it, its
	// evaluation rows (so every row read comes from the directory).
	Task string `json:"task,omitempty"`
	Data string `json:"data,omitempty"`
	// Responses is the replay policy's {match, response} JSONL file.
	Responses string `json:"responses,omitempty"`
	// Name is the served model name (default baseline-<policy>); the
	// --name flag overrides it.
	Name string `json:"name,omitempty"`
}

// ArtifactPolicies reads dir's crucible-policy.json and assembles its
// policy, served as name (when set), else as the file's name.
func ArtifactPolicies(dir, name string) ([]baseline.Named, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", dir, err)
	}
	defer root.Close()
	where := filepath.Join(dir, ArtifactPolicyFile)
	f, err := root.Open(ArtifactPolicyFile)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: no %s (want e.g. {\"policy\": \"oracle\", \"dataset\": \"key.jsonl\"}): %w",
			dir, ArtifactPolicyFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxArtifactPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(b) > maxArtifactPolicyBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", where, maxArtifactPolicyBytes)
	}
	var p ArtifactPolicy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: more than one JSON value", where)
	}
	// Every file named must be a regular file inside the directory,
	// symbolic links included (os.Root refuses an escape).
	path := func(field, rel string) (string, error) {
		if rel == "" {
			return "", nil
		}
		if !filepath.IsLocal(rel) {
			return "", fmt.Errorf("%s: %s %q leaves the artifact directory", where, field, rel)
		}
		fi, err := root.Stat(rel)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", where, field, err)
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s: %s %q is not a regular file", where, field, rel)
		}
		return filepath.Join(dir, rel), nil
	}
	var paths [4]string
	for i, fv := range [][2]string{{"dataset", p.Dataset}, {"task", p.Task}, {"data", p.Data}, {"responses", p.Responses}} {
		if paths[i], err = path(fv[0], fv[1]); err != nil {
			return nil, err
		}
	}
	dataset, task, data, responses := paths[0], paths[1], paths[2], paths[3]
	switch {
	case p.Policy == "":
		return nil, fmt.Errorf("%s: policy is required (e.g. \"oracle\")", where)
	case task != "" && data == "":
		return nil, fmt.Errorf("%s: task needs data: the evaluation rows, a file in the artifact", where)
	case data != "" && task == "":
		return nil, fmt.Errorf("%s: data needs task", where)
	case dataset != "" && (task != "" || responses != ""):
		return nil, fmt.Errorf("%s: dataset is the multiple-choice key; task and responses serve the task policies", where)
	}
	var ps []baseline.Named
	if task != "" || responses != "" {
		ps, err = TaskBaselinePolicies([]string{p.Policy}, TaskBaseline{TaskFile: task, DataFile: data, ResponsesFile: responses})
	} else {
		var key *mcq.Dataset
		if dataset != "" {
			if key, err = mcq.ParseFile(dataset); err != nil {
				return nil, err
			}
		}
		ps, err = BaselinePolicies([]string{p.Policy}, key)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(ps) != 1 {
		return nil, errors.New(where + ": the policy names one model")
	}
	ps[0].Served = p.Name
	if name != "" {
		ps[0].Served = name
	}
	return ps, nil
}
