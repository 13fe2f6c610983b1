package api

import (
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Every request body passes through decodeJSON, which refuses a body that is
// not valid UTF-8 (encoding/json would silently replace the bad bytes) and
// then calls checkInput on the decoded value: a competitor controls every byte of it, and whatever is
// accepted here is stored and shown to everyone by the public list calls.
// The rules are read from an `input` struct tag, so a request type states its
// limits beside its fields:
//
//	input:"max=200"          a string of at most 200 bytes, one line
//	input:"text,max=32MiB"   free text: tab, newline and carriage return allowed
//	input:"max=64"           on a slice or map: at most 64 entries
//	input:"min=0,max=32768"  on a number: the inclusive range
//	input:"min=0,lt=1"       on a number: lt is an exclusive upper bound
//
// Untagged strings (also in nested types of other packages, map keys and
// slice elements) get defaultMaxString and are one line; untagged slices and
// maps get defaultMaxEntries. Untagged numbers are left to the validation of
// the service that uses them. No string may hold a NUL or another C0 control
// character (nor DEL), which PostgreSQL refuses and terminals interpret.
const (
	defaultMaxString  = 512
	defaultMaxEntries = 1000
)

// inputRule is a parsed `input` tag.
type inputRule struct {
	text          bool
	max           int64 // bytes or entries; 0: the default
	min, maxNum   float64
	lt            float64
	hasMin, hasLT bool
	hasMaxNum     bool
}

func parseInputRule(tag string) (inputRule, error) {
	var r inputRule
	if tag == "" {
		return r, nil
	}
	for opt := range strings.SplitSeq(tag, ",") {
		if opt == "text" {
			r.text = true
			continue
		}
		key, val, ok := strings.Cut(opt, "=")
		if !ok {
			return r, fmt.Errorf("input tag %q: option %q is not text or key=value", tag, opt)
		}
		n, err := parseSize(val)
		if err != nil {
			return r, fmt.Errorf("input tag %q: %w", tag, err)
		}
		switch key {
		case "max":
			r.max, r.maxNum, r.hasMaxNum = int64(n), n, true
		case "min":
			r.min, r.hasMin = n, true
		case "lt":
			r.lt, r.hasLT = n, true
		default:
			return r, fmt.Errorf("input tag %q: unknown option %q", tag, key)
		}
	}
	return r, nil
}

// parseSize reads a number with an optional KiB or MiB suffix.
func parseSize(s string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "MiB"):
		s, mult = strings.TrimSuffix(s, "MiB"), 1<<20
	case strings.HasSuffix(s, "KiB"):
		s, mult = strings.TrimSuffix(s, "KiB"), 1<<10
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n * mult, nil
}

// checkInput checks the decoded request v (a pointer to a request struct)
// against the rules of its tags; the error names the field by its JSON path.
func checkInput(v any) error {
	return checkValue(reflect.ValueOf(v), "", inputRule{})
}

func checkValue(v reflect.Value, path string, rule inputRule) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkValue(v.Elem(), path, rule)
	case reflect.Struct:
		return checkStruct(v, path)
	case reflect.String:
		return checkString(v.String(), path, rule)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			// Raw bytes (a git bundle): only a tagged length is checked here;
			// the route's body limit and the handler bound the rest.
			if rule.max > 0 {
				return checkEntries(v.Len(), path, rule)
			}
			return nil
		}
		if err := checkEntries(v.Len(), path, rule); err != nil {
			return err
		}
		for i := range v.Len() {
			if err := checkValue(v.Index(i), fmt.Sprintf("%s[%d]", path, i), inputRule{}); err != nil {
				return err
			}
		}
	case reflect.Map:
		if err := checkEntries(v.Len(), path, rule); err != nil {
			return err
		}
		for it := v.MapRange(); it.Next(); {
			k := it.Key()
			elem := fmt.Sprintf("%s[%v]", path, k)
			if k.Kind() == reflect.String {
				elem = fmt.Sprintf("%s[%q]", path, truncate(k.String()))
				if err := checkString(k.String(), path+" key", inputRule{}); err != nil {
					return err
				}
			}
			if err := checkValue(it.Value(), elem, inputRule{}); err != nil {
				return err
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return checkNumber(float64(v.Int()), strconv.FormatInt(v.Int(), 10), path, rule)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return checkNumber(float64(v.Uint()), strconv.FormatUint(v.Uint(), 10), path, rule)
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return badRequest("%s: %v is not a finite number", path, f)
		}
		return checkNumber(f, strconv.FormatFloat(f, 'g', -1, 64), path, rule)
	}
	return nil
}

func checkStruct(v reflect.Value, path string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		fieldPath := path
		if !f.Anonymous || name != "" { // an embedded struct's fields are the parent's in JSON
			if name == "" {
				name = f.Name
			}
			fieldPath = joinPath(path, name)
		}
		rule, err := parseInputRule(f.Tag.Get("input"))
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t, f.Name, err) // a programming error: a 500 that names the type
		}
		if err := checkValue(v.Field(i), fieldPath, rule); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func checkString(s, path string, rule inputRule) error {
	limit := rule.max
	if limit == 0 {
		limit = defaultMaxString
	}
	if int64(len(s)) > limit {
		return badRequest("%s: %d bytes is over its limit of %d bytes", path, len(s), limit)
	}
	for i, c := range []byte(s) {
		if c >= 0x20 && c != 0x7f {
			continue
		}
		if rule.text && (c == '\t' || c == '\n' || c == '\r') {
			continue
		}
		allowed := "it is one line of printable text"
		if rule.text {
			allowed = "only tab, newline and carriage return are allowed"
		}
		return badRequest("%s: control character U+%04X at byte %d; %s", path, c, i, allowed)
	}
	return nil
}

func checkEntries(n int, path string, rule inputRule) error {
	limit := rule.max
	if limit == 0 {
		limit = defaultMaxEntries
	}
	if int64(n) > limit {
		return badRequest("%s: %d entries is over its limit of %d", path, n, limit)
	}
	return nil
}

func checkNumber(f float64, shown, path string, rule inputRule) error {
	switch {
	case rule.hasMin && f < rule.min:
		return badRequest("%s: %s is below its minimum %g", path, shown, rule.min)
	case rule.hasMaxNum && f > rule.maxNum:
		return badRequest("%s: %s is above its maximum %g", path, shown, rule.maxNum)
	case rule.hasLT && f >= rule.lt:
		return badRequest("%s: %s must be below %g", path, shown, rule.lt)
	}
	return nil
}

// truncate shortens a map key for an error message.
func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	for i := 40; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}

// invalidUTF8At returns the offset of the first byte of b that is not part
// of a valid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// maxURLText bounds the decoded path and each query value of a request.
const maxURLText = 2048

// checkURL refuses a request whose decoded path or query holds invalid
// UTF-8 or control characters: ids in paths and queries go to the database
// as they are, and PostgreSQL answers a NUL or a bad byte with an error,
// which would be a 500 (and a log line) for anyone who asks.
func checkURL(u *url.URL) error {
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("query string: %w", err)
	}
	texts := map[string][]string{"URL path": {u.Path}}
	for k, vs := range query {
		texts["query parameter name"] = append(texts["query parameter name"], k)
		texts["query parameter "+truncate(k)] = vs
	}
	for what, vs := range texts {
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return fmt.Errorf("%s: not valid UTF-8 (first bad byte at offset %d)", what, invalidUTF8At([]byte(v)))
			}
			if err := checkString(v, what, inputRule{max: maxURLText}); err != nil {
				return err
			}
		}
	}
	return nil
}
