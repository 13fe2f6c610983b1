package inference

// A fast path for decoding the two responses on the evaluation hot path
// (chat and text completions). encoding/json spends most of its time in
// reflection and in allocating fields the evaluation never reads; the
// decoders here walk the bytes once and fill the same structs.
//
// Model servers are competitor controlled, so the fast path must never
// decide differently from encoding/json. It is built to be a strict subset:
// the caller has already checked the body with json.Valid, and every shape
// the fast path is not sure about (an escaped or case-folded key, a
// duplicate key, a number that is not a plain integer, a wrong type, a
// non-null logprobs) makes it give up, and the caller decodes the body with
// encoding/json instead. Strings with escapes or invalid UTF-8 are unquoted
// by encoding/json itself. fastdecode_test.go checks both paths agree on
// real, adversarial and fuzzed bodies.

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeFast fills out, a fresh *ChatResponse or *CompletionResponse, from
// data, a body json.Valid accepted, and reports whether it could. When it
// could not, it leaves out zero again for encoding/json.
func decodeFast(data []byte, out any) bool {
	s := scanner{d: data}
	switch v := out.(type) {
	case *ChatResponse:
		if s.chatResponse(v) && s.end() {
			return true
		}
		*v = ChatResponse{}
	case *CompletionResponse:
		if s.completionResponse(v) && s.end() {
			return true
		}
		*v = CompletionResponse{}
	}
	return false
}

// scanner walks a valid JSON document.
type scanner struct {
	d []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.d) {
		switch s.d[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.d)
}

// peek returns the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.d) {
		return s.d[s.i]
	}
	return 0
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' {
		s.i += len("null")
		return true
	}
	return false
}

// rawString consumes a string token and returns it with its quotes.
func (s *scanner) rawString() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i
	for s.i++; s.i < len(s.d); s.i++ {
		switch s.d[s.i] {
		case '\\':
			s.i++ // the document is valid: the escaped byte is not the end
		case '"':
			s.i++
			return s.d[start:s.i], true
		}
	}
	return nil, false
}

// plain reports whether a raw string token means its bytes as they are:
// no escapes and valid UTF-8 (encoding/json replaces invalid bytes).
func plain(raw []byte) bool {
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' {
			return false
		}
	}
	return utf8.Valid(body)
}

// str decodes a string or null (which leaves dst alone, as encoding/json does).
func (s *scanner) str(dst *string) bool {
	if s.null() {
		return true
	}
	raw, ok := s.rawString()
	if !ok {
		return false
	}
	if plain(raw) {
		*dst = string(raw[1 : len(raw)-1])
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}

// integer decodes a plain integer literal or null into dst.
func (s *scanner) integer(dst *int64) bool {
	if s.null() {
		return true
	}
	start := s.i
	if s.i < len(s.d) && s.d[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.d) && s.d[s.i] >= '0' && s.d[s.i] <= '9' {
		s.i++
	}
	if s.i < len(s.d) {
		switch s.d[s.i] {
		case '.', 'e', 'E': // not an integer: encoding/json reports a type error
			return false
		}
	}
	n, err := strconv.ParseInt(string(s.d[start:s.i]), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

func (s *scanner) int(dst *int) bool {
	n := int64(*dst)
	if !s.integer(&n) || int64(int(n)) != n {
		return false
	}
	*dst = int(n)
	return true
}

// skip consumes any value of the valid document.
func (s *scanner) skip() bool {
	depth := 0
	for {
		switch s.peek() {
		case '"':
			if _, ok := s.rawString(); !ok {
				return false
			}
		case '{', '[':
			s.i++
			depth++
			continue
		case '}', ']':
			s.i++
			depth--
		case ',', ':':
			s.i++
			continue
		case 0:
			return false
		default: // number or literal: up to the next delimiter
			for s.i < len(s.d) {
				c := s.d[s.i]
				if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
					break
				}
				s.i++
			}
		}
		if depth == 0 {
			return true
		}
	}
}

// object walks an object's members, calling field with the index of each
// key in names; keys not in names are skipped. It gives up on what
// encoding/json would match differently: escaped or non-ASCII keys, keys
// that equal a name only case-insensitively, and repeated keys.
func (s *scanner) object(names []string, field func(i int) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	var seen uint64
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		raw, ok := s.rawString()
		if !ok {
			return false
		}
		key := raw[1 : len(raw)-1]
		idx := -1
		for i, n := range names {
			if string(key) == n {
				idx = i
				break
			}
		}
		if idx < 0 && !unrelatedKey(key, names) {
			return false
		}
		if s.peek() != ':' {
			return false
		}
		s.i++
		if idx >= 0 {
			if seen&(1<<idx) != 0 {
				return false
			}
			seen |= 1 << idx
			if !field(idx) {
				return false
			}
		} else if !s.skip() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// unrelatedKey reports whether encoding/json could not match key to any of
// names: it is plain ASCII and equals none of them case-insensitively.
func unrelatedKey(key []byte, names []string) bool {
	for _, c := range key {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	for _, n := range names {
		if asciiEqualFold(key, n) {
			return false
		}
	}
	return true
}

func asciiEqualFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// array walks an array or null, calling elem for each element; empty
// reports an empty array (encoding/json then sets an empty, non-nil slice).
func (s *scanner) array(elem func() bool, empty func()) bool {
	if s.null() {
		return true
	}
	if s.peek() != '[' {
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		empty()
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// head decodes the members every response shares; the caller handles
// index 4 (choices) and 5 (usage).
var headNames = []string{"id", "object", "created", "model", "choices", "usage"}

func (s *scanner) head(i int, id, object *string, created *int64, model *string, u *Usage) bool {
	switch i {
	case 0:
		return s.str(id)
	case 1:
		return s.str(object)
	case 2:
		return s.integer(created)
	case 3:
		return s.str(model)
	case 5:
		return s.usage(u)
	}
	return false
}

var usageNames = []string{"prompt_tokens", "completion_tokens", "total_tokens"}

func (s *scanner) usage(u *Usage) bool {
	if s.null() {
		return true
	}
	return s.object(usageNames, func(i int) bool {
		switch i {
		case 0:
			return s.int(&u.PromptTokens)
		case 1:
			return s.int(&u.CompletionTokens)
		}
		return s.int(&u.TotalTokens)
	})
}

func (s *scanner) chatResponse(r *ChatResponse) bool {
	return s.object(headNames, func(i int) bool {
		if i != 4 {
			return s.head(i, &r.ID, &r.Object, &r.Created, &r.Model, &r.Usage)
		}
		return s.array(func() bool {
			r.Choices = append(r.Choices, ChatChoice{})
			return s.chatChoice(&r.Choices[len(r.Choices)-1])
		}, func() { r.Choices = []ChatChoice{} })
	})
}

var (
	chatChoiceNames  = []string{"index", "message", "finish_reason", "logprobs"}
	chatMessageNames = []string{"role", "content"}
)

func (s *scanner) chatChoice(c *ChatChoice) bool {
	return s.object(chatChoiceNames, func(i int) bool {
		switch i {
		case 0:
			return s.int(&c.Index)
		case 1:
			if s.null() {
				return true
			}
			return s.object(chatMessageNames, func(i int) bool {
				if i == 0 {
					return s.str(&c.Message.Role)
				}
				return s.str(&c.Message.Content)
			})
		case 2:
			return s.str(&c.FinishReason)
		}
		return s.null() // logprobs: only its absence is handled here
	})
}

func (s *scanner) completionResponse(r *CompletionResponse) bool {
	return s.object(headNames, func(i int) bool {
		if i != 4 {
			return s.head(i, &r.ID, &r.Object, &r.Created, &r.Model, &r.Usage)
		}
		return s.array(func() bool {
			r.Choices = append(r.Choices, CompletionChoice{})
			return s.completionChoice(&r.Choices[len(r.Choices)-1])
		}, func() { r.Choices = []CompletionChoice{} })
	})
}

var completionChoiceNames = []string{"text", "index", "logprobs", "finish_reason"}

func (s *scanner) completionChoice(c *CompletionChoice) bool {
	return s.object(completionChoiceNames, func(i int) bool {
		switch i {
		case 0:
			return s.str(&c.Text)
		case 1:
			return s.int(&c.Index)
		case 3:
			return s.str(&c.FinishReason)
		}
		return s.null()
	})
}
