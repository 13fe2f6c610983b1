// Package roleplaytest holds the roleplay kind's baseline policies, served
// by internal/baseline's model server (as net/http/httptest is beside
// net/http): deterministic characters that answer in role from the card in
// the system prompt (see roleplay.SystemPrompt) and continue the user's side
// when asked as a generator (see roleplay.UserSimMessages), and judges.
//
// # Persona policies
//
// A character reply is built from fixed phrase lists, the pick fixed by an
// FNV-1a hash of the character's name and the last user message:
//
//	<action> <reaction using the user's two longest content words>
//	<trait using two content words of the persona> <closer>
//
// Content words are lowercased runs of letters, digits and apostrophes of
// at least four characters that are not stop words.
//
//   - persona: closers are statements and no phrase contains '?'.
//   - persona-plus: the "slightly better" variant: the same reply with the
//     closer turned into a question of the same length and content words, so
//     only the judge's engagement grade differs (9 → 10).
//   - persona-ref: a reference character with its own phrase lists, so the
//     other policies do not copy it verbatim.
//   - persona-incoherent: two nonsense words repeated sixteen times, which
//     the judge policy finds incoherent.
//
// Asked as a generator (system prompt starting with roleplay.UserSimPrefix),
// every persona policy writes the user's next message from fixed templates
// around the longest content word of the character's last message in the
// transcript.
//
// The judge policies are documented in judge.go. Roleplay policies answer
// chat requests only; /v1/completions is a 400. Like every kind, this
// package never imports the store, jobs, api or app.
package roleplaytest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"crucible/internal/baseline"
	"crucible/internal/eval/roleplay"
	"crucible/internal/inference"
)

// Roleplay policy names (model names "baseline-<policy>").
const (
	PolicyPersona           = "persona"
	PolicyPersonaPlus       = "persona-plus"
	PolicyPersonaRef        = "persona-ref"
	PolicyPersonaIncoherent = "persona-incoherent"
	PolicyJudge             = "judge"
	PolicyJudgeGarbage      = "judge-garbage"
)

// Names lists every roleplay policy.
func Names() []string {
	return []string{PolicyPersona, PolicyPersonaPlus, PolicyPersonaRef, PolicyPersonaIncoherent, PolicyJudge, PolicyJudgeGarbage}
}

// New returns a baseline model server serving the named roleplay policies,
// all of them (Names) when none is named.
func New(names ...string) (http.Handler, error) {
	ps, err := Policies(names)
	if err != nil {
		return nil, err
	}
	return baseline.New(baseline.Config{Policies: ps}), nil
}

// Policies returns the named policies for a baseline server, in order, all
// of them (Names) when names is empty.
func Policies(names []string) ([]baseline.Named, error) {
	if len(names) == 0 {
		names = Names()
	}
	out := make([]baseline.Named, len(names))
	for i, n := range names {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("baseline: unknown policy %q (want %s)", n, strings.Join(Names(), ", "))
		}
		out[i] = baseline.Named{Name: n, Policy: policy(n)}
	}
	return out, nil
}

// policy is a roleplay policy by name.
type policy string

// Chat answers a chat request under the policy.
func (p policy) Chat(msgs []inference.ChatMessage) (string, error) {
	switch p {
	case PolicyJudge:
		return judgeAnswer(msgs)
	case PolicyJudgeGarbage:
		return garbageJudgeAnswer, nil
	}
	sys := ""
	if msgs[0].Role == "system" {
		sys = msgs[0].Content
	}
	last := lastUser(msgs)
	if strings.HasPrefix(sys, roleplay.UserSimPrefix) {
		return userTurn(sys, last), nil
	}
	if last == "" {
		return "", errors.New("baseline persona: no user message to answer")
	}
	name, persona := parseCard(sys)
	return characterTurn(string(p), name, persona, last), nil
}

// Complete refuses: characters and judges are chat models.
func (p policy) Complete(string) (baseline.Completion, error) {
	return baseline.Completion{}, fmt.Errorf("baseline-%s answers /v1/chat/completions only", string(p))
}

func lastUser(msgs []inference.ChatMessage) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	return ""
}

// parseCard reads the name and persona from a roleplay.SystemPrompt.
func parseCard(sys string) (name, persona string) {
	if rest, ok := strings.CutPrefix(sys, roleplay.SystemPromptPrefix); ok {
		if i := strings.Index(rest, ", in a role-play chat"); i > 0 {
			name = rest[:i]
		}
	}
	for line := range strings.SplitSeq(sys, "\n") {
		if p, ok := strings.CutPrefix(line, "Persona: "); ok {
			persona = p
			break
		}
	}
	return name, persona
}

func hash(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// isStopWord reports whether w (lowercased) is too common to carry content.
func isStopWord(w string) bool {
	switch w {
	case "about", "after", "again", "also", "been", "being", "before", "could", "didn't", "does", "doesn't", "don't",
		"down", "every", "from", "have", "having", "here", "into", "it's", "just", "know", "like", "make", "many",
		"more", "most", "much", "must", "never", "only", "other", "over", "really", "same", "should", "some", "such",
		"than", "that", "their", "them", "then", "there", "these", "they", "this", "those", "through", "very", "want",
		"well", "were", "what", "when", "where", "which", "while", "will", "with", "would", "your", "you're", "yours",
		"i'm", "i've", "okay", "yeah", "tell", "thing", "things", "the", "and", "for", "you", "are", "was", "not",
		"but", "all", "can", "how", "who", "why", "did", "its", "now", "our", "she", "her", "him", "his", "too",
		"any", "let", "yes", "out", "one", "has", "had":
		return true
	}
	return false
}

// contentWords returns the lowercased content words of s with at least
// minLen characters, in order, without repeats.
func contentWords(s string, minLen int) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	}) {
		w = strings.Trim(w, "'")
		if len([]rune(w)) < minLen || isStopWord(w) || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// longest returns the n longest words of ws, ties to the earlier; adverbs
// ending in "ly" are passed over while other words remain.
func longest(ws []string, n int) []string {
	var topical []string
	for _, w := range ws {
		if !strings.HasSuffix(w, "ly") {
			topical = append(topical, w)
		}
	}
	if len(topical) >= n {
		ws = topical
	}
	out := make([]string, 0, n)
	used := make([]bool, len(ws))
	for range n {
		best := -1
		for i, w := range ws {
			if !used[i] && (best < 0 || len([]rune(w)) > len([]rune(ws[best]))) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		used[best] = true
		out = append(out, ws[best])
	}
	return out
}

// words lowercases s and splits it into words of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

func capitalise(s string) string {
	r := []rune(s)
	if len(r) == 0 {
		return s
	}
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

type phrases struct {
	actions, reactions, traits, closers []string
}

var (
	personaPhrases = phrases{
		actions: []string{"*leans closer*", "*smiles softly*", "*raises an eyebrow*", "*pauses to think*", "*laughs quietly*"},
		reactions: []string{
			"So it is {k1} on your mind, and {k2} too.",
			"{K1} and {k2}, you say. I have thought about that longer than you would guess.",
			"Ah, {k1}. That brings back a memory, and {k2} makes it sharper.",
			"You bring up {k1} and {k2}, and I cannot pretend I do not care.",
		},
		traits: []string{
			"I am {name}, and {p1} and {p2} are what I know best.",
			"Anyone who knows me knows {p1} matters to me, and so does {p2}.",
			"Between {p1} and {p2}, my days are never quiet.",
		},
		closers: []string{"Tell me more about it.", "Go on, I am listening.", "Stay with me a while longer."},
	}
	// plusClosers pair personaPhrases.closers: same length and content
	// words, asked as questions.
	plusClosers  = []string{"Can you tell me more?", "Will you go on listening?", "Will you stay a while longer?"}
	referenceSet = phrases{
		actions: []string{"*nods slowly*", "*folds both arms*", "*tilts head*"},
		reactions: []string{
			"I understand why {k1} weighs on you.",
			"Well, {k1} is not a small thing to bring up.",
			"Hm. {K1}. I have heard stranger things today.",
		},
		traits: []string{
			"Still, I am {name}, and {p1} comes first with me.",
			"You should know that {p1} is never far from my mind.",
		},
		closers: []string{"Let us see where this goes.", "We will sort it out together."},
	}
	nonsense = []string{"glorp", "zint", "wubble", "krel", "fnord", "plix"}
)

// characterTurn is a persona policy's in-character reply.
func characterTurn(policy, name, persona, user string) string {
	h := hash(name, user)
	if policy == PolicyPersonaIncoherent {
		a, b := nonsense[h%uint64(len(nonsense))], nonsense[(h/7+1)%uint64(len(nonsense))]
		if a == b {
			b = "blip"
		}
		return strings.TrimSpace(strings.Repeat(a+" "+b+" ", 8))
	}
	set := personaPhrases
	if policy == PolicyPersonaRef {
		set = referenceSet
	}
	ks := longest(contentWords(user, 4), 2)
	for len(ks) < 2 {
		ks = append(ks, []string{"that", "everything else"}[len(ks)])
	}
	ps := contentWords(persona, 5)
	p1, p2 := "my work", "my friends"
	if len(ps) > 0 {
		p1 = ps[h%uint64(len(ps))]
		p2 = ps[(h/11+1)%uint64(len(ps))]
		if p2 == p1 && len(ps) > 1 {
			p2 = ps[(h%uint64(len(ps))+1)%uint64(len(ps))]
		}
	}
	if name == "" {
		name = "myself"
	}
	fill := strings.NewReplacer("{K1}", capitalise(ks[0]), "{k1}", ks[0], "{k2}", ks[1], "{name}", name, "{p1}", p1, "{p2}", p2)
	ci := (h >> 24) % uint64(len(set.closers))
	closer := set.closers[ci]
	if policy == PolicyPersonaPlus {
		closer = plusClosers[ci]
	}
	return strings.Join([]string{
		set.actions[h%uint64(len(set.actions))],
		fill.Replace(set.reactions[(h>>8)%uint64(len(set.reactions))]),
		fill.Replace(set.traits[(h>>16)%uint64(len(set.traits))]),
		closer,
	}, " ")
}

var userTemplates = []string{
	"Tell me more about the {k}.",
	"Wait, what do you mean by {k}?",
	"I did not expect that. Why {k}, of all things?",
	"Okay, {k} sounds important. What happens next?",
}

// userTurn is a persona policy's user-side message as a generator: a
// template around the longest content word of the character's last line.
func userTurn(sys, transcript string) string {
	name := ""
	for line := range strings.SplitSeq(sys, "\n") {
		if n, ok := strings.CutPrefix(line, "Character: "); ok {
			name = n
			break
		}
	}
	last := ""
	for line := range strings.SplitSeq(transcript, "\n") {
		if t, ok := strings.CutPrefix(line, name+": "); ok && name != "" {
			last = t
		}
	}
	k := "that"
	if ks := longest(contentWords(last, 4), 1); len(ks) > 0 {
		k = ks[0]
	}
	return strings.ReplaceAll(userTemplates[hash(name, last)%uint64(len(userTemplates))], "{k}", k)
}
