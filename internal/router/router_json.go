package router

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// modelField returns the value of the top-level "model" string of a JSON
// object without decoding the rest, so the router can route a request
// without allocating. Like encoding/json, the last "model" key wins. It
// reports false if body is not a JSON object or has no string "model".
func modelField(body []byte) ([]byte, bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i++
	var model []byte
	found := false
	for {
		i = skipSpace(body, i)
		if i >= len(body) {
			return nil, false
		}
		if body[i] == '}' {
			return model, found
		}
		if body[i] != '"' {
			return nil, false
		}
		ks, ke, esc, ok := scanString(body, i)
		if !ok {
			return nil, false
		}
		key := body[ks:ke]
		i = skipSpace(body, ke+1)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipSpace(body, i+1)
		if i >= len(body) {
			return nil, false
		}
		isModel := string(key) == "model"
		if esc {
			var k string
			isModel = json.Unmarshal(body[ks-1:ke+1], &k) == nil && k == "model"
		}
		if isModel {
			if body[i] != '"' {
				return nil, false
			}
			vs, ve, vesc, ok := scanString(body, i)
			if !ok {
				return nil, false
			}
			model, found = body[vs:ve], true
			if vesc {
				var v string
				if json.Unmarshal(body[vs-1:ve+1], &v) != nil {
					return nil, false
				}
				model = []byte(v)
			}
			i = ve + 1
		} else {
			var ok bool
			if i, ok = skipValue(body, i); !ok {
				return nil, false
			}
		}
		i = skipSpace(body, i)
		if i >= len(body) {
			return nil, false
		}
		switch body[i] {
		case ',':
			i++
		case '}':
			return model, found
		default:
			return nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// scanString scans the string starting at b[i] == '"' and returns the
// bounds of its contents (end is the index of the closing quote) and
// whether it contains escapes.
func scanString(b []byte, i int) (start, end int, escaped, ok bool) {
	start = i + 1
	for j := start; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return start, j, escaped, true
		}
	}
	return 0, 0, false, false
}

// skipValue skips the JSON value starting at b[i] and returns the index
// after it. Nested containers are skipped by bracket counting outside
// strings; their contents are not validated (the worker does that).
func skipValue(b []byte, i int) (int, bool) {
	switch b[i] {
	case '"':
		_, end, _, ok := scanString(b, i)
		return end + 1, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, end, _, ok := scanString(b, j)
				if !ok {
					return 0, false
				}
				j = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default: // number, true, false, null
		j := i
		for j < len(b) && bytes.IndexByte([]byte(",}] \n\r\t"), b[j]) < 0 {
			j++
		}
		return j, j > i
	}
}

// writeJSONResponse writes v as a JSON response with the given status.
func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte{'\n'})
}
