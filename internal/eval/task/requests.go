package task

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Data holds the rows a task runs on.
type Data struct {
	Eval    []Row // the evaluation split
	Fewshot []Row // the pool few-shot examples are drawn from
	// SameSplit is set when Fewshot is the evaluation split itself: a
	// doc is never its own example.
	SameSplit bool
}

// EvalSplit is the split lm-eval evaluates: test_split, else validation_split.
func (c *Config) EvalSplit() string {
	if c.TestSplit != "" {
		return c.TestSplit
	}
	return c.ValidationSplit
}

// FewshotSplitName is the split examples come from, in lm-eval's order:
// fewshot_split, else training_split, validation_split, test_split. With
// local data_files, a named split without files is passed over, where
// lm-eval would fail on the missing split.
func (c *Config) FewshotSplitName() string {
	for _, s := range []string{c.FewshotSplit, c.TrainingSplit, c.ValidationSplit, c.TestSplit} {
		if _, ok := c.DataFiles[s]; s != "" && (ok || c.DataFiles == nil) {
			return s
		}
	}
	return c.EvalSplit()
}

// LoadData reads the task's rows. dataFile, when set, replaces the
// evaluation split (a hub dataset_path needs it); fewshotFile the few-shot
// split. numFewshot is the number of examples the run will use: the
// few-shot split is read only when it is above 0.
func (c *Config) LoadData(dataFile, fewshotFile string, numFewshot int) (*Data, error) {
	split := func(name, override string) ([]Row, error) {
		if override != "" {
			return ReadFile(override)
		}
		files, ok := c.DataFiles[name]
		if !ok {
			if c.DataFiles == nil {
				return nil, fmt.Errorf("%s: dataset_path %q is not a local file: give the rows of split %q as a file", c.File, c.DatasetPath, name)
			}
			return nil, fmt.Errorf("%s: data_files has no split %q", c.File, name)
		}
		var rows []Row
		for _, f := range files {
			r, err := ReadFile(f)
			if err != nil {
				return nil, err
			}
			rows = append(rows, r...)
		}
		return rows, nil
	}
	d := &Data{}
	var err error
	if d.Eval, err = split(c.EvalSplit(), dataFile); err != nil {
		return nil, err
	}
	if numFewshot == 0 {
		return d, nil
	}
	fs := c.FewshotSplitName()
	if fewshotFile == "" && fs == c.EvalSplit() {
		d.Fewshot, d.SameSplit = d.Eval, true
		return d, nil
	}
	if d.Fewshot, err = split(fs, fewshotFile); err != nil {
		return nil, err
	}
	return d, nil
}

// Item is one doc turned into requests, as lm-eval's construct_requests
// builds them.
type Item struct {
	Index   int
	Pos     string // the row's FILE:LINE
	Prompt  string // description, few-shot examples, then the doc's text
	Choices []string
	Gold    int    // the gold choice (multiple_choice)
	Target  string // the reference (the gold choice's text for multiple_choice)
	// Requests are one log-likelihood request per choice (multiple_choice),
	// one for the target (loglikelihood), or one generation per repeat.
	Requests []Request
}

// Request is one call to the model.
type Request struct {
	Prompt string
	// Continuation is scored after Prompt (log-likelihood requests).
	Continuation string
	// Generation settings (generate_until).
	Until       []string
	MaxGenToks  int
	Temperature float64
	DoSample    bool
}

// Items builds every doc's item, failing on the first bad row with its
// position, so a bad file imports nothing. Few-shot examples are drawn with
// a generator seeded by (seed, doc index): a doc's prompt does not depend on
// which other docs run (lm-eval draws from one random.Random(1234) shared
// across docs, so its examples differ from these).
func (c *Config) Items(d *Data, numFewshot int, seed uint64) ([]Item, error) {
	if numFewshot > 0 && len(d.Fewshot) == 0 {
		return nil, fmt.Errorf("%s: %d-shot needs few-shot rows (split %q)", c.File, numFewshot, c.FewshotSplitName())
	}
	items := make([]Item, len(d.Eval))
	total := 0
	for i, row := range d.Eval {
		it, err := c.item(d, i, numFewshot, seed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", row.Pos, err)
		}
		if total += it.size(); total > itemsBudget {
			return nil, fmt.Errorf("%s: doc %d: the items so far render %d bytes, more than the %d allowed for a task's items", row.Pos, i, total, itemsBudget)
		}
		items[i] = it
	}
	return items, nil
}

// itemsBudget is MaxItemsBytes; a variable so a test can lower it.
var itemsBudget = MaxItemsBytes

// size is the bytes of an item's text: its prompt, choices and target, and
// each request's prompt and continuation (a request repeats the prompt).
func (it Item) size() int {
	n := len(it.Prompt) + len(it.Target)
	for _, ch := range it.Choices {
		n += len(ch)
	}
	for _, r := range it.Requests {
		n += len(r.Prompt) + len(r.Continuation)
		for _, u := range r.Until {
			n += len(u)
		}
	}
	return n
}

func (c *Config) item(d *Data, i, numFewshot int, seed uint64) (Item, error) {
	doc := d.Eval[i].Doc
	it := Item{Index: i, Pos: d.Eval[i].Pos}
	text, err := c.text(doc)
	if err != nil {
		return it, err
	}
	ctx := ""
	if c.Description != nil {
		if ctx, err = c.Description.Render(doc); err != nil {
			return it, fmt.Errorf("description: %w", err)
		}
	}
	for _, k := range c.sample(d, i, numFewshot, seed) {
		shot, err := c.shot(d.Fewshot[k].Doc)
		if err != nil {
			return it, fmt.Errorf("few-shot example %s: %w", d.Fewshot[k].Pos, err)
		}
		if n := len(ctx) + len(shot) + len(text); n > MaxPromptBytes {
			return it, fmt.Errorf("doc %d: the prompt with its few-shot examples reaches %d bytes, more than %d", i, n, MaxPromptBytes)
		}
		ctx += shot
	}
	if n := len(ctx) + len(text); n > MaxPromptBytes {
		return it, fmt.Errorf("doc %d: the prompt is %d bytes, more than %d", i, n, MaxPromptBytes)
	}
	it.Prompt = ctx + text
	if c.DocToChoice != nil {
		if it.Choices, err = c.choices(doc); err != nil {
			return it, err
		}
	}
	tgt, n, isInt, err := c.target(doc)
	if err != nil {
		return it, err
	}
	switch c.OutputType {
	case MultipleChoice:
		it.Gold = -1
		for k, ch := range it.Choices {
			if isInt && k == n || !isInt && ch == tgt {
				it.Gold = k
			}
		}
		if it.Gold < 0 {
			return it, fmt.Errorf("doc_to_target %q is not one of the %d choices", tgt, len(it.Choices))
		}
		it.Target = it.Choices[it.Gold]
		for _, ch := range it.Choices {
			it.Requests = append(it.Requests, Request{Prompt: it.Prompt, Continuation: c.TargetDelimiter + ch})
		}
	case LogLikelihood:
		it.Target = tgt
		it.Requests = []Request{{Prompt: it.Prompt, Continuation: c.TargetDelimiter + tgt}}
	case GenerateUntil:
		it.Target = tgt
		if isInt && it.Choices != nil {
			if n < 0 || n >= len(it.Choices) {
				return it, fmt.Errorf("doc_to_target %d is not a choice index (%d choices)", n, len(it.Choices))
			}
			it.Target = it.Choices[n]
		}
		g := c.Generation
		for range c.Repeats {
			it.Requests = append(it.Requests, Request{Prompt: it.Prompt, Until: g.Until,
				MaxGenToks: g.MaxGenToks, Temperature: g.Temperature, DoSample: g.DoSample})
		}
	}
	return it, nil
}

// sample picks the few-shot examples of doc i: indices into d.Fewshot,
// never i itself when the pool is the evaluation split.
func (c *Config) sample(d *Data, i, k int, seed uint64) []int {
	self := -1
	if d.SameSplit {
		self = i
	}
	n := len(d.Fewshot)
	if self >= 0 {
		n--
	}
	k = min(k, n)
	out := make([]int, 0, k)
	if c.FewshotFirstN {
		for j := 0; len(out) < k; j++ {
			if j != self {
				out = append(out, j)
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	taken := map[int]bool{self: true}
	for len(out) < k {
		j := rng.IntN(len(d.Fewshot))
		if !taken[j] {
			taken[j] = true
			out = append(out, j)
		}
	}
	return out
}

// shot is one few-shot example as lm-eval's ContextSampler writes it.
func (c *Config) shot(doc Doc) (string, error) {
	text, err := c.text(doc)
	if err != nil {
		return "", err
	}
	tgt, n, isInt, err := c.target(doc)
	if err != nil {
		return "", err
	}
	if isInt && c.DocToChoice != nil {
		ch, err := c.choices(doc)
		if err != nil {
			return "", err
		}
		if n < 0 || n >= len(ch) {
			return "", fmt.Errorf("doc_to_target %d is not a choice index (%d choices)", n, len(ch))
		}
		tgt = ch[n]
	}
	if tgt == "" {
		return text, nil
	}
	return text + c.TargetDelimiter + tgt + c.FewshotDelimiter, nil
}

// text renders doc_to_text (a template or a column name).
func (c *Config) text(doc Doc) (string, error) {
	if v, ok := doc[c.DocToText.Column]; ok && c.DocToText.Column != "" {
		return pyValue(v), nil
	}
	s, err := c.DocToText.Tmpl.Render(doc)
	if err != nil {
		return "", fmt.Errorf("doc_to_text: %w", err)
	}
	return s, nil
}

// target renders doc_to_target. An integer (a constant, an integer column,
// or digits a template renders when the task has choices: lm-eval's isdigit
// rule) is a choice index, isInt set and s its decimal form; anything else
// is the reference string. A column's value is taken as it is, as lm-eval
// takes doc[column]: a string column of digits stays a string.
func (c *Config) target(doc Doc) (s string, n int, isInt bool, err error) {
	f := c.DocToTarget
	if f.Int != nil {
		return strconv.Itoa(*f.Int), *f.Int, true, nil
	}
	if v, ok := doc[f.Column]; ok && f.Column != "" {
		if i, ok := v.(int64); ok {
			return strconv.FormatInt(i, 10), int(i), true, nil
		}
		return pyValue(v), 0, false, nil
	}
	if s, err = f.Tmpl.Render(doc); err != nil {
		return "", 0, false, fmt.Errorf("doc_to_target: %w", err)
	}
	if c.DocToChoice != nil && isDigits(s) {
		if n, err := strconv.Atoi(s); err == nil {
			return s, n, true, nil
		}
	}
	return s, 0, false, nil
}

// choices renders doc_to_choice: a list of templates, a list column, or
// one expression giving a list.
func (c *Config) choices(doc Doc) ([]string, error) {
	f := c.DocToChoice
	if f.List != nil {
		out := make([]string, len(f.List))
		for k, t := range f.List {
			s, err := t.Render(doc)
			if err != nil {
				return nil, fmt.Errorf("doc_to_choice[%d]: %w", k, err)
			}
			out[k] = s
		}
		return out, nil
	}
	if v, ok := doc[f.Column].([]any); ok {
		out := make([]string, len(v))
		for k, x := range v {
			out[k] = pyValue(x)
		}
		return out, nil
	}
	out, err := f.Tmpl.RenderList(doc)
	if err != nil {
		return nil, fmt.Errorf("doc_to_choice: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("doc_to_choice: no choices")
	}
	return out, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// pyValue formats a row value as Python's str().
func pyValue(v any) string {
	if i, ok := v.(int64); ok {
		return strconv.FormatInt(i, 10)
	}
	return pyStr(v)
}
