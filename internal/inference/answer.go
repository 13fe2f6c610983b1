package inference

// A narrower fast path than decodeFast's for the generative evaluation's
// chat responses: it keeps only what the evaluation reads (ChatAnswer) and
// checks the rest without storing it, in loops rather than callbacks. It
// follows decodeFast's rules (fastdecode.go): a body it accepts is valid
// JSON that encoding/json decodes into a ChatResponse without error, and
// it gives up, for the caller to decode the body as Chat does, on every
// shape it is not sure of. fastdecode_test.go checks it against
// encoding/json with decodeFast's bodies and fuzzer.

import "unicode/utf8"

// ChatAnswer is what an evaluation reads of a chat completion: exactly the
// values these fields of the ChatResponse that Chat returns would hold.
type ChatAnswer struct {
	// Choices is the number of choices.
	Choices int
	// Content and FinishReason are the first choice's, "" without one.
	Content      string
	FinishReason string
	Usage        Usage
}

// answerOf projects r onto a ChatAnswer.
func answerOf(r *ChatResponse) ChatAnswer {
	a := ChatAnswer{Choices: len(r.Choices), Usage: r.Usage}
	if len(r.Choices) > 0 {
		a.Content = r.Choices[0].Message.Content
		a.FinishReason = r.Choices[0].FinishReason
	}
	return a
}

// decodeAnswer fills a, zero, from data and reports whether it could; when
// it could not, it leaves a zero again.
func decodeAnswer(data []byte, a *ChatAnswer) bool {
	s := scanner{d: data}
	if s.answer(a) && s.end() {
		return true
	}
	*a = ChatAnswer{}
	return false
}

// enter consumes the opening byte of an object or array and, if the
// container is empty, its closing byte; more reports a first member.
func (s *scanner) enter(open, closing byte) (more, ok bool) {
	if s.peek() != open {
		return false, false
	}
	s.i++
	if s.peek() == closing {
		s.i++
		return false, true
	}
	return true, true
}

// next consumes what follows a member or element: a comma (more) or the
// closing byte.
func (s *scanner) next(closing byte) (more, ok bool) {
	switch s.peek() {
	case ',':
		s.i++
		return true, true
	case closing:
		s.i++
		return false, true
	}
	return false, false
}

// key consumes a member's key and its colon. Keys of plain bytes without
// upper-case letters, nearly all, are compared as they are: encoding/json
// can match them to a field (all lower case) only by equality. For the
// others, known is whether encoding/json could match the key to one of
// names (an escape or a non-ASCII byte counts as could), and the caller
// gives up.
func (s *scanner) key(names []string) (key []byte, known, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	start := s.i + 1
	j := start
	for j < len(s.d) && keyPlain[s.d[j]] {
		j++
	}
	if j < len(s.d) && s.d[j] == '"' {
		key, s.i = s.d[start:j], j+1
	} else {
		raw, _, ok := s.rawString()
		if !ok {
			return nil, false, false
		}
		key = raw[1 : len(raw)-1]
		known = !unrelatedKey(key, names)
	}
	if s.peek() != ':' {
		return nil, false, false
	}
	s.i++
	return key, known, true
}

// keyPlain holds the bytes key compares as they are: printable ASCII
// other than a quote, a backslash and the upper-case letters. (Keys are
// short: a table beats the eight-byte tests of strings here.)
var keyPlain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && (c < 'A' || c > 'Z')
	}
	return t
}()

// checkStr consumes a string or null, as str does without keeping it.
func (s *scanner) checkStr() bool {
	if s.peek() == 'n' {
		return s.null()
	}
	_, _, ok := s.rawString()
	return ok
}

// first sets bit in *seen and reports whether it was clear: a repeated key
// makes the decoder give up (encoding/json merges repeats).
func first(seen *uint, bit uint) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

func (s *scanner) answer(a *ChatAnswer) bool {
	var seen uint
	more, ok := s.enter('{', '}')
	for ; more; more, ok = s.next('}') {
		k, known, ok := s.key(headNames)
		if !ok || known {
			return false
		}
		switch string(k) {
		case "id":
			ok = first(&seen, 1) && s.checkStr()
		case "object":
			ok = first(&seen, 2) && s.checkStr()
		case "created":
			var n int64
			ok = first(&seen, 4) && s.integer(&n)
		case "model":
			ok = first(&seen, 8) && s.checkStr()
		case "choices":
			ok = first(&seen, 16) && s.answerChoices(a)
		case "usage":
			ok = first(&seen, 32) && s.usage(&a.Usage)
		default:
			ok = s.skip()
		}
		if !ok {
			return false
		}
	}
	return ok
}

func (s *scanner) answerChoices(a *ChatAnswer) bool {
	if s.peek() == 'n' {
		return s.null()
	}
	more, ok := s.enter('[', ']')
	for ; more; more, ok = s.next(']') {
		if !s.answerChoice(a, a.Choices == 0) {
			return false
		}
		a.Choices++
	}
	return ok
}

// answerChoice checks a choice, keeping its content and finish reason in a
// when keep is set.
func (s *scanner) answerChoice(a *ChatAnswer, keep bool) bool {
	var seen uint
	more, ok := s.enter('{', '}')
	for ; more; more, ok = s.next('}') {
		k, known, ok := s.key(chatChoiceNames)
		if !ok || known {
			return false
		}
		switch string(k) {
		case "index":
			var n int
			ok = first(&seen, 1) && s.int(&n)
		case "message":
			ok = first(&seen, 2) && s.answerMessage(a, keep)
		case "finish_reason":
			if !first(&seen, 4) {
				return false
			}
			if keep {
				ok = s.str(&a.FinishReason)
			} else {
				ok = s.checkStr()
			}
		case "logprobs":
			ok = first(&seen, 8) && s.null() // only its absence is handled here
		default:
			ok = s.skip()
		}
		if !ok {
			return false
		}
	}
	return ok
}

func (s *scanner) answerMessage(a *ChatAnswer, keep bool) bool {
	if s.peek() == 'n' {
		return s.null()
	}
	var seen uint
	more, ok := s.enter('{', '}')
	for ; more; more, ok = s.next('}') {
		k, known, ok := s.key(chatMessageNames)
		if !ok || known {
			return false
		}
		switch string(k) {
		case "role":
			ok = first(&seen, 1) && s.checkStr()
		case "content":
			if !first(&seen, 2) {
				return false
			}
			if keep {
				ok = s.str(&a.Content)
			} else {
				ok = s.checkStr()
			}
		default:
			ok = s.skip()
		}
		if !ok {
			return false
		}
	}
	return ok
}

var usageNames = []string{"prompt_tokens", "completion_tokens", "total_tokens"}

// usage decodes a usage object or null, for both fast paths.
func (s *scanner) usage(u *Usage) bool {
	if s.peek() == 'n' {
		return s.null()
	}
	var seen uint
	more, ok := s.enter('{', '}')
	for ; more; more, ok = s.next('}') {
		k, known, ok := s.key(usageNames)
		if !ok || known {
			return false
		}
		switch string(k) {
		case "prompt_tokens":
			ok = first(&seen, 1) && s.int(&u.PromptTokens)
		case "completion_tokens":
			ok = first(&seen, 2) && s.int(&u.CompletionTokens)
		case "total_tokens":
			ok = first(&seen, 4) && s.int(&u.TotalTokens)
		default:
			ok = s.skip()
		}
		if !ok {
			return false
		}
	}
	return ok
}
