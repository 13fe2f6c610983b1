package inference

// A fast path for decoding the two responses on the evaluation hot path
// (chat and text completions). encoding/json spends most of its time in
// reflection and in allocating fields the evaluation never reads; the
// decoders here walk the bytes once and fill the same structs.
//
// Model servers are competitor controlled, so the fast path must never
// decide differently from encoding/json. It is built to be a strict subset:
// it checks the JSON grammar as it walks (so a body it accepts is one
// json.Valid accepts, without a second pass over it), and every shape it is
// not sure about (any syntax error, an escaped or case-folded key, a
// duplicate key, a number that is not a short plain integer, a wrong type, a
// non-null logprobs, deep nesting) makes it give up, and the caller decodes
// the body with encoding/json instead, which reports the error or decodes
// it. Strings with escapes or invalid UTF-8 are unquoted by encoding/json
// itself. fastdecode_test.go checks both paths agree on real, adversarial
// and fuzzed bodies.

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

// decodeFast fills out, a fresh *ChatResponse or *CompletionResponse, from
// data and reports whether it could: only when data is valid JSON. When it
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

// scanner walks a JSON document, failing at the first byte that is not
// valid JSON.
type scanner struct {
	d []byte
	i int
}

func (s *scanner) ws() {
	// Called before every token, which is rarely after white space: one
	// comparison rules out all four white space bytes.
	for s.i < len(s.d) && s.d[s.i] <= ' ' {
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
	if s.i < len(s.d) && s.d[s.i] > ' ' { // the usual: no white space
		return s.d[s.i]
	}
	s.ws()
	if s.i < len(s.d) {
		return s.d[s.i]
	}
	return 0
}

// literal consumes lit (true, false or null) if it is next.
func (s *scanner) literal(lit string) bool {
	s.ws()
	if len(s.d)-s.i >= len(lit) && string(s.d[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool { return s.literal("null") }

// rawString consumes a valid string token and returns it with its quotes;
// plain reports that it means its bytes as they are: no escapes and valid
// UTF-8 (encoding/json replaces invalid bytes).
func (s *scanner) rawString() (raw []byte, plain, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	start := s.i
	escaped, high := false, false
	for s.i++; s.i < len(s.d); s.i++ {
		// Skip bytes that are neither a quote, a backslash nor a control
		// character eight at a time, up to the first one that is.
		for s.i+8 <= len(s.d) {
			w := binary.LittleEndian.Uint64(s.d[s.i:])
			high = high || w&highs != 0
			n := stringPrefix8(w)
			s.i += n
			if n < 8 {
				break
			}
		}
		if s.i == len(s.d) {
			break
		}
		c := s.d[s.i]
		switch {
		case c == '"':
			s.i++
			raw = s.d[start:s.i]
			return raw, !escaped && (!high || utf8.Valid(raw[1:len(raw)-1])), true
		case c == '\\':
			escaped = true
			if s.i++; s.i >= len(s.d) {
				return nil, false, false
			}
			switch s.d[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 >= len(s.d) {
					return nil, false, false
				}
				for _, h := range s.d[s.i+1 : s.i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, false, false
					}
				}
				s.i += 4
			default:
				return nil, false, false
			}
		case c < 0x20: // control characters must be escaped
			return nil, false, false
		case c >= utf8.RuneSelf:
			high = true
		}
	}
	return nil, false, false
}

// stringPrefix8 returns how many of the 8 bytes of w (little-endian), from
// the first, a JSON string may hold as they are: not a quote, a backslash or
// a control character. The tests are the exact has-zero-byte and
// has-byte-less-than of "Bit Twiddling Hacks": each sets the high bit of
// every byte it matches, and may set it after a match (a borrow), never
// before one, so the lowest high bit is the first such byte.
func stringPrefix8(w uint64) int {
	return bits.TrailingZeros64(stringStops8(w)&highs) / 8
}

// stringStops8 flags (sets the high bit of) each byte of w that is a quote,
// a backslash or a control character; bytes after the first flagged one
// may be flagged too, bytes before it never are.
func stringStops8(w uint64) uint64 {
	m := (w - 0x20*ones) &^ w // below 0x20
	v := w ^ '"'*ones
	m |= (v - ones) &^ v
	v = w ^ '\\'*ones
	return m | (v-ones)&^v
}

// digits consumes a run of decimal digits and returns its length.
func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.d) && s.d[s.i] >= '0' && s.d[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// number consumes a number token of JSON's grammar and reports whether it
// is a plain integer (no fraction or exponent).
func (s *scanner) number() (integer, ok bool) {
	s.ws()
	if s.i < len(s.d) && s.d[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.d) && s.d[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false, false
	}
	integer = true
	if s.i < len(s.d) && s.d[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false, false
		}
		integer = false
	}
	if s.i < len(s.d) && (s.d[s.i] == 'e' || s.d[s.i] == 'E') {
		s.i++
		if s.i < len(s.d) && (s.d[s.i] == '+' || s.d[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false, false
		}
		integer = false
	}
	return integer, true
}

// str decodes a string or null (which leaves dst alone, as encoding/json
// does). Null is rare: one peek rules it out.
func (s *scanner) str(dst *string) bool {
	if s.peek() == 'n' {
		return s.null()
	}
	raw, plain, ok := s.rawString()
	if !ok {
		return false
	}
	if plain {
		*dst = usual(raw[1 : len(raw)-1])
		return true
	}
	v, ok := unquote(raw)
	if ok {
		*dst = v
	}
	return ok
}

// unquote decodes the string token raw with encoding/json. Apart from str,
// so that what str fills does not escape to the heap (a ChatAnswer on the
// caller's stack) for the rare strings that need it.
func unquote(raw []byte) (string, bool) {
	var v string
	return v, json.Unmarshal(raw, &v) == nil
}

// usual returns string(b), without allocating for the values of object,
// role and finish_reason that nearly every response carries.
func usual(b []byte) string {
	switch string(b) {
	case "chat.completion":
		return "chat.completion"
	case "text_completion":
		return "text_completion"
	case "assistant":
		return "assistant"
	case "stop":
		return "stop"
	case "length":
		return "length"
	}
	return string(b)
}

// integer decodes a plain integer literal of at most 18 digits (which
// cannot overflow) or null into dst. Longer integers are left to
// encoding/json, as are fractions and exponents (its type error), and
// malformed numbers (its syntax error): a fraction or an exponent stops
// the digits where the caller wants a comma or a closing bracket, so the
// caller gives up.
func (s *scanner) integer(dst *int64) bool {
	c := s.peek()
	if c == 'n' {
		return s.null()
	}
	neg := c == '-'
	if neg {
		s.i++
	}
	start := s.i
	var n int64
	for s.i < len(s.d) && s.d[s.i]-'0' <= 9 {
		n = n*10 + int64(s.d[s.i]-'0')
		s.i++
	}
	if k := s.i - start; k == 0 || k > 18 || k > 1 && s.d[start] == '0' {
		return false
	}
	if neg {
		n = -n
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

// maxSkipDepth bounds the nesting of the values skip walks (recursively);
// deeper ones are left to encoding/json, which has its own limit.
const maxSkipDepth = 64

// skip consumes any valid value.
func (s *scanner) skip() bool { return s.value(0) }

func (s *scanner) value(depth int) bool {
	switch s.peek() {
	case '"':
		_, _, ok := s.rawString()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.null()
	case '{', '[':
		if depth >= maxSkipDepth {
			return false
		}
		closing := byte('}')
		if s.d[s.i] == '[' {
			closing = ']'
		}
		s.i++
		if s.peek() == closing {
			s.i++
			return true
		}
		for {
			if closing == '}' {
				if _, _, ok := s.rawString(); !ok || s.peek() != ':' {
					return false
				}
				s.i++
			}
			if !s.value(depth + 1) {
				return false
			}
			switch s.peek() {
			case ',':
				s.i++
			case closing:
				s.i++
				return true
			default:
				return false
			}
		}
	}
	_, ok := s.number()
	return ok
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
		raw, _, ok := s.rawString()
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
