package preference

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"
)

// Copy is one miner's obfuscated copy of a task together with the mapping
// back to the canonical task. Store the whole Copy; send only View().
type Copy struct {
	// TaskID is the canonical task's id; it never leaves the validator.
	TaskID string `json:"task_id"`
	// ShownID is the id the miner sees: a keyed hash of (miner, task), so
	// two miners cannot tell from ids that they hold copies of one task.
	ShownID string `json:"shown_id"`
	// Miner is the miner (hotkey) the copy was made for.
	Miner string `json:"miner"`
	// Instruction is the original instruction (not obfuscated).
	Instruction string `json:"instruction"`
	// Criteria and Deadline are the task's.
	Criteria Criteria  `json:"criteria"`
	Deadline time.Time `json:"deadline"`
	// Responses are the obfuscated responses in the order shown.
	Responses []Response `json:"responses"`
	// Perm maps a shown position to the canonical response index:
	// Responses[i] is an obfuscated Task.Responses[Perm[i]].
	Perm []int `json:"perm"`
	// Renames holds, per shown position, the identifier renames applied
	// to its code (original name → shown name); nil when none.
	Renames []map[string]string `json:"renames"`
	// Attempt is the redraw counter that made the copy distinct from the
	// other miners' copies (0 for most copies).
	Attempt int `json:"attempt"`
}

// View is what a miner receives: the copy without the mapping, under its
// shown id.
type View struct {
	TaskID      string         `json:"task_id"`
	Instruction string         `json:"instruction"`
	Criteria    Criteria       `json:"criteria"`
	Deadline    time.Time      `json:"deadline"`
	Responses   []ViewResponse `json:"responses"`
}

// ViewResponse is one response as a miner sees it.
type ViewResponse struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// View returns the miner-facing part of c.
func (c Copy) View() View {
	v := View{TaskID: c.ShownID, Instruction: c.Instruction, Criteria: c.Criteria, Deadline: c.Deadline}
	for _, r := range c.Responses {
		v.Responses = append(v.Responses, ViewResponse{ID: r.ID, Text: r.Text})
	}
	return v
}

// ObfuscatorConfig configures an Obfuscator.
type ObfuscatorConfig struct {
	// Secret keys the per-copy seeds, so a miner who knows the algorithm,
	// the task id and its own name still cannot recompute the shuffle. It
	// must stay on the validator; empty is allowed only in tests.
	Secret []byte
	// MaxAttempts bounds the redraws Copies makes to keep copies distinct
	// (default 64).
	MaxAttempts int
}

// Obfuscator makes per-miner copies of tasks.
type Obfuscator struct {
	secret      []byte
	maxAttempts int
}

// NewObfuscator returns an Obfuscator for cfg.
func NewObfuscator(cfg ObfuscatorConfig) *Obfuscator {
	o := &Obfuscator{secret: append([]byte(nil), cfg.Secret...), maxAttempts: cfg.MaxAttempts}
	if o.maxAttempts <= 0 {
		o.maxAttempts = 64
	}
	return o
}

// Copy returns miner's copy of t. It is deterministic in (secret, task id,
// miner): calling it again gives the same bytes.
func (o *Obfuscator) Copy(t Task, miner string) Copy {
	return o.copyAttempt(t, miner, 0)
}

// Copies returns one copy per miner, redrawing a copy whose shown texts
// equal an earlier miner's until every pair of copies differs byte-wise.
// Miners must be distinct.
func (o *Obfuscator) Copies(t Task, miners []string) ([]Copy, error) {
	seen := map[string]string{}
	out := make([]Copy, 0, len(miners))
	for _, m := range miners {
		if _, dup := seen["miner\x00"+m]; dup {
			return nil, fmt.Errorf("copies of task %s: miner %q listed twice", t.ID, m)
		}
		seen["miner\x00"+m] = m
		var c Copy
		for a := 0; ; a++ {
			if a >= o.maxAttempts {
				return nil, fmt.Errorf("copies of task %s: no distinct copy for miner %q after %d attempts", t.ID, m, a)
			}
			c = o.copyAttempt(t, m, a)
			key := copyKey(c)
			if _, clash := seen[key]; !clash {
				seen[key] = m
				break
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// copyKey is the shown content of a copy: the texts in shown order.
func copyKey(c Copy) string {
	var b strings.Builder
	for _, r := range c.Responses {
		b.WriteString(r.Text)
		b.WriteString("\x00")
	}
	return b.String()
}

// ShownID returns the id miner sees for task taskID: "t-" and a keyed hash
// of both, the same for every copy attempt.
func (o *Obfuscator) ShownID(taskID, miner string) string {
	mac := hmac.New(sha256.New, o.secret)
	fmt.Fprintf(mac, "shown\x00%s\x00%s", miner, taskID)
	return "t-" + hex.EncodeToString(mac.Sum(nil)[:10])
}

func (o *Obfuscator) copyAttempt(t Task, miner string, attempt int) Copy {
	mac := hmac.New(sha256.New, o.secret)
	fmt.Fprintf(mac, "%s\x00%s\x00%d", t.ID, miner, attempt)
	sum := mac.Sum(nil)
	rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])))
	n := len(t.Responses)
	c := Copy{
		TaskID:      t.ID,
		ShownID:     o.ShownID(t.ID, miner),
		Miner:       miner,
		Instruction: t.Instruction,
		Criteria:    t.Criteria,
		Deadline:    t.Deadline,
		Perm:        rng.Perm(n),
		Renames:     make([]map[string]string, n),
		Attempt:     attempt,
	}
	idKey := hex.EncodeToString(sum[16:24])
	for i, ci := range c.Perm {
		text, renames := obfuscateText(t.Responses[ci].Text, rng)
		if attempt > 0 && i == n-1 {
			// Last resort for tiny texts: invisible trailing newlines.
			text += strings.Repeat("\n", attempt)
		}
		c.Responses = append(c.Responses, Response{ID: fmt.Sprintf("c%s%d", idKey[:10], i+1), Text: text})
		if len(renames) > 0 {
			c.Renames[i] = renames
		}
	}
	return c
}

// Deobfuscate maps a miner's answer on copy c — values[i] is the rank
// (1 = best) or score of shown response i — back to canonical order:
// out[Perm[i]] = values[i]. It checks the answer against the criteria:
// ranks must be a permutation of 1..n, scores within MinScore..MaxScore.
func Deobfuscate(c Copy, values []int) ([]int, error) {
	n := len(c.Perm)
	if len(values) != n {
		return nil, fmt.Errorf("task %s: %d values for %d responses", c.TaskID, len(values), n)
	}
	switch c.Criteria {
	case CriteriaRank:
		if err := checkPermutation(values, n); err != nil {
			return nil, fmt.Errorf("task %s: ranking: %w", c.TaskID, err)
		}
	case CriteriaScore:
		for i, v := range values {
			if v < MinScore || v > MaxScore {
				return nil, fmt.Errorf("task %s: score %d of response %d is outside %d..%d", c.TaskID, v, i+1, MinScore, MaxScore)
			}
		}
	default:
		return nil, fmt.Errorf("task %s: unknown criteria %q", c.TaskID, c.Criteria)
	}
	out := make([]int, n)
	for i, ci := range c.Perm {
		if ci < 0 || ci >= n {
			return nil, errors.New("copy: corrupt permutation")
		}
		out[ci] = values[i]
	}
	return out, nil
}

// DeobfuscateIDs maps a best-first list of shown response ids (what the
// labeling page submits for CriteriaRank) to canonical ranks.
func DeobfuscateIDs(c Copy, order []string) ([]int, error) {
	pos := map[string]int{}
	for i, r := range c.Responses {
		pos[r.ID] = i
	}
	if len(order) != len(c.Responses) {
		return nil, fmt.Errorf("task %s: %d ids for %d responses", c.TaskID, len(order), len(c.Responses))
	}
	values := make([]int, len(order))
	for rank, id := range order {
		i, ok := pos[id]
		if !ok {
			return nil, fmt.Errorf("task %s: unknown response id %q", c.TaskID, id)
		}
		if values[i] != 0 {
			return nil, fmt.Errorf("task %s: response id %q listed twice", c.TaskID, id)
		}
		values[i] = rank + 1
	}
	return Deobfuscate(c, values)
}

var fenceRE = regexp.MustCompile("^[ ]{0,3}(```+|~~~+)(.*)$")

// segment is a piece of a response: prose or one fenced code block.
type segment struct {
	code  bool
	open  string // fence line, with its newline
	body  string
	close string // closing fence line, possibly empty when unterminated
	info  string
}

// splitFences splits Markdown text into prose and fenced code segments.
// Joining open+body+close of every segment gives back the text.
func splitFences(text string) []segment {
	lines := strings.SplitAfter(text, "\n")
	var segs []segment
	var cur strings.Builder
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(strings.TrimRight(lines[i], "\r\n"))
		if m == nil {
			cur.WriteString(lines[i])
			continue
		}
		if cur.Len() > 0 {
			segs = append(segs, segment{body: cur.String()})
			cur.Reset()
		}
		s := segment{code: true, open: lines[i], info: strings.TrimSpace(m[2])}
		var body strings.Builder
		j := i + 1
		for ; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			if strings.HasPrefix(t, m[1]) && strings.Trim(t, m[1][:1]) == "" {
				s.close = lines[j]
				break
			}
			body.WriteString(lines[j])
		}
		s.body = body.String()
		segs = append(segs, s)
		i = j
	}
	if cur.Len() > 0 {
		segs = append(segs, segment{body: cur.String()})
	}
	return segs
}

func joinSegments(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.open)
		b.WriteString(s.body)
		b.WriteString(s.close)
	}
	return b.String()
}

var (
	sentenceGapRE = regexp.MustCompile(`([.!?]) ([A-Z0-9])`)
	bulletRE      = regexp.MustCompile(`(?m)^(\s*)[-*+] `)
)

// obfuscateText applies meaning-preserving variations: prose gets sentence
// spacing, bullet-marker and trailing-space changes; fenced code in a known
// language gets renamed locals and spacing changes.
func obfuscateText(text string, rng *rand.Rand) (string, map[string]string) {
	segs := splitFences(text)
	all := map[string]string{}
	bullet := "-*+"[rng.IntN(3)]
	for i := range segs {
		s := &segs[i]
		if s.code {
			lang := normLang(s.info)
			if s.info == "" {
				lang = guessLang(s.body)
			}
			var r map[string]string
			s.body, r = renameCode(s.body, lang, rng)
			for k, v := range r {
				all[k] = v
			}
			continue
		}
		s.body = bulletRE.ReplaceAllString(s.body, "${1}"+string(bullet)+" ")
		s.body = sentenceGapRE.ReplaceAllStringFunc(s.body, func(m string) string {
			if rng.IntN(2) == 0 {
				return m[:1] + "  " + m[2:]
			}
			return m
		})
		lines := strings.SplitAfter(s.body, "\n")
		for j, l := range lines {
			if strings.HasSuffix(l, "\n") && len(l) > 1 && !strings.HasSuffix(l, " \n") && rng.IntN(3) == 0 {
				lines[j] = l[:len(l)-1] + " \n"
			}
		}
		s.body = strings.Join(lines, "")
	}
	out := joinSegments(segs)
	switch rng.IntN(3) {
	case 0:
		out = strings.TrimRight(out, "\n")
	case 1:
		out = strings.TrimRight(out, "\n") + "\n"
	}
	if len(all) == 0 {
		all = nil
	}
	return out, all
}

// responseID returns an opaque, stable id for canonical response i of a task.
func responseID(taskID string, i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("response\x00%s\x00%d", taskID, i)))
	return "r" + hex.EncodeToString(sum[:6])
}
