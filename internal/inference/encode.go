package inference

// Append-based encoders for the two requests on the evaluation hot path.
// They write exactly the bytes json.Marshal writes (fastencode_test.go
// compares them on real and fuzzed requests) without its reflection, and
// fall back to json.Marshal for fields they do not handle.

import (
	"encoding/json"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// encodeChat appends the JSON body of r to dst, as json.Marshal writes it. Nothing of
// r escapes (json.Marshal gets a deep copy, built field by field: copying
// *r whole would make its contents escape), so a caller's request, its
// messages and temperature stay on its stack: three allocations an
// evaluation item fewer. TestEncodeEveryField keeps the copy complete.
func encodeChat(dst []byte, r *ChatRequest) ([]byte, error) {
	if b, ok := appendChatRequest(dst, r); ok {
		return b, nil
	}
	c := ChatRequest{
		Model: strings.Clone(r.Model), MaxTokens: r.MaxTokens, Stream: r.Stream,
		Temperature: clonePtr(r.Temperature), Seed: clonePtr(r.Seed), N: clonePtr(r.N),
		StreamOptions: clonePtr(r.StreamOptions), Logprobs: clonePtr(r.Logprobs), TopLogprobs: clonePtr(r.TopLogprobs),
	}
	if r.Messages != nil {
		c.Messages = make([]ChatMessage, len(r.Messages))
		for i, m := range r.Messages {
			c.Messages[i] = ChatMessage{Role: strings.Clone(m.Role), Content: strings.Clone(m.Content)}
		}
	}
	return appendMarshal(dst, &c)
}

// encodeCompletion is encodeChat for a CompletionRequest.
func encodeCompletion(dst []byte, r *CompletionRequest) ([]byte, error) {
	if b, ok := appendCompletionRequest(dst, r); ok {
		return b, nil
	}
	c := CompletionRequest{
		Model: strings.Clone(r.Model), Prompt: strings.Clone(r.Prompt), MaxTokens: r.MaxTokens, Echo: r.Echo,
		Logprobs: clonePtr(r.Logprobs), Temperature: clonePtr(r.Temperature),
	}
	if r.Stop != nil {
		c.Stop = make([]string, len(r.Stop))
		for i, s := range r.Stop {
			c.Stop[i] = strings.Clone(s)
		}
	}
	return appendMarshal(dst, &c)
}

func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// appendChatRequest encodes requests that set only model, messages,
// max_tokens and temperature, the shape of every generative evaluation.
func appendChatRequest(dst []byte, r *ChatRequest) ([]byte, bool) {
	if r.Stream || r.Seed != nil || r.N != nil || r.StreamOptions != nil || r.Logprobs != nil || r.TopLogprobs != nil {
		return nil, false
	}
	n := len(r.Model) + 64
	for _, m := range r.Messages {
		n += len(m.Role) + len(m.Content) + 32
	}
	b := append(slices.Grow(dst, n+n/16), `{"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"messages":`...)
	if r.Messages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, m := range r.Messages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"role":`...)
			b = appendString(b, m.Role)
			b = append(b, `,"content":`...)
			b = appendString(b, m.Content)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.MaxTokens != 0 {
		b = append(b, `,"max_tokens":`...)
		b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	}
	if r.Temperature != nil {
		var ok bool
		b = append(b, `,"temperature":`...)
		if b, ok = appendFloat(b, *r.Temperature); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}

// appendCompletionRequest encodes every CompletionRequest.
func appendCompletionRequest(dst []byte, r *CompletionRequest) ([]byte, bool) {
	n := len(r.Model) + len(r.Prompt) + 96
	for _, s := range r.Stop {
		n += len(s) + 3
	}
	b := append(slices.Grow(dst, n+n/16), `{"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"prompt":`...)
	b = appendString(b, r.Prompt)
	b = append(b, `,"max_tokens":`...)
	b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	if r.Echo {
		b = append(b, `,"echo":true`...)
	}
	if r.Logprobs != nil {
		b = append(b, `,"logprobs":`...)
		b = strconv.AppendInt(b, int64(*r.Logprobs), 10)
	}
	if r.Temperature != nil {
		var ok bool
		b = append(b, `,"temperature":`...)
		if b, ok = appendFloat(b, *r.Temperature); !ok {
			return nil, false
		}
	}
	if len(r.Stop) > 0 {
		b = append(b, `,"stop":[`...)
		for i, s := range r.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

// appendFloat writes f as encoding/json does for the values it writes in
// plain decimal; exponent forms and non-finite values (an error) are left
// to json.Marshal.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if abs := math.Abs(f); math.IsNaN(f) || math.IsInf(f, 0) || abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return nil, false
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), true
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string exactly as json.Marshal does:
// HTML-sensitive bytes (<, >, &) and U+2028/U+2029 are escaped as \u
// sequences, invalid UTF-8 becomes \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Prompts are mostly plain ASCII: skip it eight bytes at a time, up
		// to the first byte that needs a look.
		for i+8 <= len(s) {
			t := s[i : i+8] // one 8-byte load, and inline (a call costs as much)
			n := plainPrefix8(uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
				uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56)
			i += n
			if n < 8 {
				break
			}
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Word-at-a-time byte tests (the bit tricks of "Bit Twiddling Hacks").
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainPrefix8 returns how many of the 8 bytes of w (little-endian), from
// the first, appendString copies as they are: bytes that are not a control
// character, non-ASCII, a quote, a backslash or one of the HTML-escaped <, >
// and &. Each test sets the high bit of every byte it matches, and may set
// it in bytes after a match (a borrow), never before one, so the lowest high
// bit is the first byte to escape.
func plainPrefix8(w uint64) int {
	m := w | (w - 0x20*ones) // non-ASCII, or below 0x20
	m |= (w ^ '\\'*ones) - ones
	m |= ((w | 0x04*ones) ^ '&'*ones) - ones // " (0x22) or & (0x26)
	m |= ((w | 0x02*ones) ^ '>'*ones) - ones // < (0x3c) or > (0x3e)
	return bits.TrailingZeros64(m&highs) / 8
}
