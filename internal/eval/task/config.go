package task

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Output types.
const (
	MultipleChoice = "multiple_choice"
	GenerateUntil  = "generate_until"
	LogLikelihood  = "loglikelihood"
)

// MaxConfigBytes bounds a task file.
const MaxConfigBytes = 1 << 20

// Config is a parsed task file.
type Config struct {
	File string // as given to Parse, for messages
	Task string
	// DatasetPath is "json" or "csv" (rows from DataFiles) or a hub name,
	// whose rows the caller must supply (--data).
	DatasetPath string
	DatasetName string
	// DataFiles maps a split to its files, resolved against the task
	// file's directory. A single file or list is the "train" split, as in
	// the datasets library.
	DataFiles                                               map[string][]string
	TestSplit, ValidationSplit, TrainingSplit, FewshotSplit string
	// FewshotFirstN is fewshot_config.sampler "first_n": the first
	// num_fewshot examples instead of a seeded random sample.
	FewshotFirstN bool
	OutputType    string
	DocToText     Field
	DocToTarget   Field
	DocToChoice   *Field // nil unless given
	// Description is rendered over each doc, as lm-eval does.
	Description      *Template
	TargetDelimiter  string
	FewshotDelimiter string
	NumFewshot       int
	Repeats          int
	Generation       Generation
	Filters          []Pipeline
	Metrics          []Metric
}

// Field is a doc_to_* value: a template (or a column name, resolved at
// render time as lm-eval does), a list of templates, or an integer.
type Field struct {
	Tmpl *Template
	List []*Template
	Int  *int
	// Column is the raw string, used when a doc has a column of that name.
	Column string
}

// Generation holds generation_kwargs.
type Generation struct {
	Until       []string
	MaxGenToks  int
	Temperature float64
	DoSample    bool
}

// DefaultMaxGenToks is lm-eval's max_gen_toks default.
const DefaultMaxGenToks = 256

// Metric is one metric_list entry.
type Metric struct {
	Name              string // acc, acc_norm or exact_match
	IgnoreCase        bool
	IgnorePunctuation bool
	RegexesToIgnore   []*regexp.Regexp
}

// ignoredKeys change no result: labels, grouping, bookkeeping and dataset
// download options.
var ignoredKeys = map[string]bool{
	"tag": true, "group": true, "group_alias": true, "task_alias": true,
	"metadata": true, "should_decontaminate": true, "doc_to_decontamination_query": true,
	"dataset_kwargs": true, // only data_files is read; the rest are download options
	"unsafe_code":    true,
}

// Load reads and parses a task file.
func Load(path string) (*Config, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxConfigBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, st.Size(), MaxConfigBytes)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// parser carries the file name for FILE:LINE messages.
type parser struct{ file string }

func (p parser) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, n.Line, fmt.Sprintf(format, args...))
}

// Parse parses a task file's text; file names it in errors and anchors
// relative data_files.
func Parse(file string, src []byte) (*Config, error) {
	p := parser{file: file}
	if len(src) > MaxConfigBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", file, len(src), MaxConfigBytes)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:1: a task file is a YAML mapping", file)
	}
	if a := findAlias(&root); a != nil {
		return nil, p.errf(a, "YAML aliases are not supported: write the value out")
	}
	c := &Config{File: file, TargetDelimiter: " ", FewshotDelimiter: "\n\n", Repeats: 1}
	m := root.Content[0]
	seen := map[string]*yaml.Node{}
	var genNode, fewshotNode *yaml.Node
	for k := 0; k+1 < len(m.Content); k += 2 {
		key, val := m.Content[k], m.Content[k+1]
		if seen[key.Value] != nil {
			return nil, p.errf(key, "%s given twice", key.Value)
		}
		seen[key.Value] = val
		if val.Tag == "!function" {
			return nil, p.errf(val, "%s: !function (Python code) is not supported", key.Value)
		}
		var err error
		switch key.Value {
		case "task":
			c.Task, err = p.str(val)
		case "dataset_path":
			c.DatasetPath, err = p.str(val)
		case "dataset_name":
			c.DatasetName, err = p.optStr(val)
		case "test_split":
			c.TestSplit, err = p.optStr(val)
		case "validation_split":
			c.ValidationSplit, err = p.optStr(val)
		case "training_split":
			c.TrainingSplit, err = p.optStr(val)
		case "fewshot_split":
			c.FewshotSplit, err = p.optStr(val)
		case "output_type":
			c.OutputType, err = p.str(val)
		case "doc_to_text":
			c.DocToText, err = p.field(val)
		case "doc_to_target":
			c.DocToTarget, err = p.field(val)
		case "doc_to_choice":
			var f Field
			f, err = p.field(val)
			c.DocToChoice = &f
		case "description":
			var s string
			if s, err = p.str(val); err == nil && s != "" {
				c.Description, err = p.template(val, s)
			}
		case "target_delimiter":
			c.TargetDelimiter, err = p.str(val)
		case "fewshot_delimiter":
			c.FewshotDelimiter, err = p.str(val)
		case "num_fewshot":
			c.NumFewshot, err = p.intIn(val, 0, 1000)
		case "repeats":
			c.Repeats, err = p.intIn(val, 1, 1000)
		case "generation_kwargs":
			genNode = val
		case "fewshot_config":
			fewshotNode = val
		case "filter_list":
			c.Filters, err = p.filters(val)
		case "metric_list":
			c.Metrics, err = p.metrics(val)
		default:
			if !ignoredKeys[key.Value] {
				return nil, p.errf(key, "unsupported key %q (it would change results)", key.Value)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.check(c, m, seen); err != nil {
		return nil, err
	}
	if err := p.generation(c, genNode); err != nil {
		return nil, err
	}
	if err := p.fewshotConfig(c, fewshotNode); err != nil {
		return nil, err
	}
	return c, p.dataFiles(c, seen["dataset_kwargs"])
}

// findAlias returns the first alias node under n: the accessors read
// values in place, so a *ref would otherwise fail with a misleading type.
func findAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c); a != nil {
			return a
		}
	}
	return nil
}

// check enforces the keys every output type needs.
func (p parser) check(c *Config, m *yaml.Node, seen map[string]*yaml.Node) error {
	switch c.OutputType {
	case MultipleChoice:
		if c.DocToChoice == nil {
			return p.errf(m, "multiple_choice needs doc_to_choice")
		}
	case GenerateUntil, LogLikelihood:
	case "":
		return p.errf(m, "output_type is required")
	default:
		return p.errf(seen["output_type"], "output_type %q is not supported (want multiple_choice, generate_until or loglikelihood)", c.OutputType)
	}
	for _, k := range []string{"task", "dataset_path", "doc_to_text", "doc_to_target"} {
		if seen[k] == nil {
			return p.errf(m, "%s is required", k)
		}
	}
	// Multiple-input (winogrande-style) docs and multiple gold targets
	// change how requests are built; they are not supported.
	if c.DocToText.Int != nil || c.DocToText.List != nil {
		return p.errf(seen["doc_to_text"], "doc_to_text must be a template or a column name (multiple-input tasks are not supported)")
	}
	if c.DocToTarget.List != nil {
		return p.errf(seen["doc_to_target"], "doc_to_target must be a template, a column name or an integer (multiple targets are not supported)")
	}
	if c.DocToChoice != nil && c.DocToChoice.Int != nil {
		return p.errf(seen["doc_to_choice"], "doc_to_choice must be a list, a template giving a list or a column name")
	}
	if seen["filter_list"] != nil && c.OutputType != GenerateUntil {
		return p.errf(seen["filter_list"], "filter_list applies to generate_until tasks only")
	}
	for _, pl := range c.Filters {
		for _, st := range pl.Steps {
			if st.Func == MCQAnswer && c.DocToChoice == nil {
				return p.errf(seen["filter_list"], "filter %s: %s reads answers against the choices: the task needs doc_to_choice", pl.Name, MCQAnswer)
			}
		}
	}
	if c.TestSplit == "" && c.ValidationSplit == "" {
		return p.errf(m, "test_split or validation_split is required")
	}
	if len(c.Metrics) == 0 {
		// lm-eval's defaults per output type.
		name := "acc"
		if c.OutputType == GenerateUntil {
			name = "exact_match"
		}
		c.Metrics = []Metric{{Name: name}}
	}
	for k, mt := range c.Metrics {
		ok := mt.Name == "exact_match" && c.OutputType == GenerateUntil ||
			mt.Name == "acc" && c.OutputType != GenerateUntil ||
			mt.Name == "acc_norm" && c.OutputType == MultipleChoice
		if !ok {
			return p.errf(seen["metric_list"].Content[k], "metric %s does not apply to %s", mt.Name, c.OutputType)
		}
	}
	if len(c.Filters) == 0 {
		c.Filters = []Pipeline{{Name: "none", Steps: []Step{{Func: "take_first"}}}}
	}
	return nil
}

func (p parser) str(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errf(n, "want a string")
	}
	return n.Value, nil
}

// optStr accepts null as "".
func (p parser) optStr(n *yaml.Node) (string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return "", nil
	}
	return p.str(n)
}

func (p parser) intIn(n *yaml.Node, lo, hi int) (int, error) {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || v < lo || v > hi {
		return 0, p.errf(n, "want an integer from %d to %d", lo, hi)
	}
	return v, nil
}

func (p parser) boolean(n *yaml.Node) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, p.errf(n, "want true or false")
	}
	return strconv.ParseBool(n.Value)
}

func (p parser) template(n *yaml.Node, src string) (*Template, error) {
	t, err := CompileTemplate(src)
	if err != nil {
		return nil, p.errf(n, "%v", err)
	}
	t.name = fmt.Sprintf("%s:%d ", p.file, n.Line)
	return t, nil
}

func (p parser) field(n *yaml.Node) (Field, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!int":
		v, err := p.intIn(n, 0, 1<<20)
		return Field{Int: &v}, err
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		t, err := p.template(n, n.Value)
		return Field{Tmpl: t, Column: n.Value}, err
	case n.Kind == yaml.SequenceNode:
		var f Field
		for _, e := range n.Content {
			s, err := p.str(e)
			if err != nil {
				return Field{}, err
			}
			t, err := p.template(e, s)
			if err != nil {
				return Field{}, err
			}
			f.List = append(f.List, t)
		}
		return f, nil
	}
	return Field{}, p.errf(n, "want a template, a list of templates or an integer")
}

func (p parser) generation(c *Config, n *yaml.Node) error {
	c.Generation = Generation{MaxGenToks: DefaultMaxGenToks}
	if n == nil {
		c.Generation.Until = []string{c.FewshotDelimiter}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "generation_kwargs: want a mapping")
	}
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, val := n.Content[k], n.Content[k+1]
		var err error
		switch key.Value {
		case "until":
			if val.Kind == yaml.SequenceNode {
				for _, e := range val.Content {
					s, err := p.str(e)
					if err != nil {
						return err
					}
					c.Generation.Until = append(c.Generation.Until, s)
				}
			} else {
				var s string
				s, err = p.str(val)
				c.Generation.Until = []string{s}
			}
		case "max_gen_toks":
			c.Generation.MaxGenToks, err = p.intIn(val, 1, 1<<20)
		case "temperature":
			c.Generation.Temperature, err = strconv.ParseFloat(val.Value, 64)
			if err != nil || val.Kind != yaml.ScalarNode || c.Generation.Temperature < 0 {
				err = p.errf(val, "temperature: want a number ≥ 0")
			}
		case "do_sample":
			c.Generation.DoSample, err = p.boolean(val)
		default:
			return p.errf(key, "generation_kwargs: unsupported key %q", key.Value)
		}
		if err != nil {
			return err
		}
	}
	if c.Generation.Until == nil {
		c.Generation.Until = []string{c.FewshotDelimiter}
	}
	return nil
}

func (p parser) fewshotConfig(c *Config, n *yaml.Node) error {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "fewshot_config: want a mapping")
	}
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, val := n.Content[k], n.Content[k+1]
		if key.Value != "sampler" {
			return p.errf(key, "fewshot_config: unsupported key %q", key.Value)
		}
		switch val.Value {
		case "default":
		case "first_n":
			c.FewshotFirstN = true
		default:
			return p.errf(val, "fewshot_config: unsupported sampler %q (want default or first_n)", val.Value)
		}
	}
	return nil
}

// dataFiles reads dataset_kwargs.data_files for json and csv datasets.
func (p parser) dataFiles(c *Config, kw *yaml.Node) error {
	local := c.DatasetPath == "json" || c.DatasetPath == "csv" || c.DatasetPath == "parquet"
	var files *yaml.Node
	if kw != nil && kw.Kind == yaml.MappingNode {
		for k := 0; k+1 < len(kw.Content); k += 2 {
			if kw.Content[k].Value == "data_files" {
				files = kw.Content[k+1]
			}
		}
	}
	if !local {
		return nil
	}
	if files == nil {
		return fmt.Errorf("%s: dataset_path %s needs dataset_kwargs.data_files", p.file, c.DatasetPath)
	}
	dir := filepath.Dir(c.File)
	c.DataFiles = map[string][]string{}
	add := func(split string, n *yaml.Node) error {
		list := []*yaml.Node{n}
		if n.Kind == yaml.SequenceNode {
			list = n.Content
		}
		for _, e := range list {
			s, err := p.str(e)
			if err != nil {
				return err
			}
			if !filepath.IsAbs(s) {
				s = filepath.Join(dir, s)
			}
			c.DataFiles[split] = append(c.DataFiles[split], s)
		}
		return nil
	}
	if files.Kind != yaml.MappingNode {
		return add("train", files)
	}
	for k := 0; k+1 < len(files.Content); k += 2 {
		if err := add(files.Content[k].Value, files.Content[k+1]); err != nil {
			return err
		}
	}
	return nil
}
