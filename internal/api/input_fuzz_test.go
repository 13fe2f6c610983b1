package api

import (
	"bytes"
	"crucible/internal/api/apiv1"
	"crucible/internal/pool"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// requestTypes makes one of every request body the API decodes.
var requestTypes = []func() any{
	func() any { return new(apiv1.CreateCompetitionRequest) },
	func() any { return new(apiv1.CreateSubmissionRequest) },
	func() any { return new(apiv1.CreatePoolRequest) },
	func() any { return new(pool.JoinRequest) },
	func() any { return new(apiv1.AllocateRequest) },
	func() any { return new(apiv1.SetStakeRequest) },
	func() any { return new(apiv1.PostWeightsRequest) },
	func() any { return new(apiv1.CreatePreferenceCompetitionRequest) },
	func() any { return new(apiv1.PreferenceRatingRequest) },
	func() any { return new(apiv1.CreateContributorKeyRequest) },
}

// FuzzDecodeRequest feeds arbitrary bytes to the request decoder as every
// request type: it must never panic, must answer a refusal with 400 (or
// 413), and whatever it accepts must hold only valid UTF-8 text without
// control characters (tab, newline and carriage return in free text only),
// within every field's length and entry limits.
func FuzzDecodeRequest(f *testing.F) {
	for i, body := range []string{
		`{"kind":"mcq","title":"t","dataset_name":"d","dataset":"{\"question\":\"q\",\"choices\":[\"a\",\"b\"],\"answer\":0}\n","max_tokens":32}`,
		`{"name":"n","base_url":"http://127.0.0.1:9/v1","model":"m","task":"t","patch":"--- a\n+++ b\n","api_key":"k"}`,
		`{"title":"t","dataset":"x","fund":10,"asset":"USD","allocation":"proportional","start":"2026-12-01T00:00:00Z","end":"2026-12-02T00:00:00Z","private_fraction":0.5}`,
		`{"name":"n","base_url":"http://127.0.0.1:9/v1","model":"m","api_key":"k"}`,
		`{"rule":"top:2","amount":100,"scores":{"a":1,"b":0.5}}`,
		`{"validator":"ed25519:x","stake":5}`,
		`{"competition_id":"c-1","weights":{"0":1,"7":0.25}}`,
		`{"title":"t","dataset":"","preference":{"criteria":"rank","ttl":"24h","operators":["truncate"],"scoring":{"min_tasks":1}}}`,
		`{"task_id":"t","order":["a","b"],"values":[1,2]}`,
		`{"label":"for my annotators"}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Add(uint8(0), []byte(`{"kind":"mcq","title":"a\u0000b"}`))
	f.Add(uint8(0), []byte("{\"title\":\"\xff\"}"))
	f.Add(uint8(4), []byte(`{"scores":{"\u001b[31m":1}}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		v := requestTypes[int(which)%len(requestTypes)]()
		err := decodeJSON(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)), v)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || (he.code != http.StatusBadRequest && he.code != http.StatusRequestEntityTooLarge) {
				t.Fatalf("refusal %v is not a 400 or 413", err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		assertClean(t, reflect.ValueOf(v), reflect.TypeOf(v).Elem().Name(), "")
	})
}

// assertClean checks the invariants of an accepted request, with its own
// reading of the input tags (only their text and max options).
func assertClean(t *testing.T, v reflect.Value, path, tag string) {
	t.Helper()
	limit := int64(0)
	for opt := range strings.SplitSeq(tag, ",") {
		if s, ok := strings.CutPrefix(opt, "max="); ok {
			n, err := parseSize(s)
			if err != nil {
				t.Fatalf("%s: tag %q: %v", path, tag, err)
			}
			limit = int64(n)
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			assertClean(t, v.Elem(), path, tag)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				assertClean(t, v.Field(i), path+"."+f.Name, f.Tag.Get("input"))
			}
		}
	case reflect.String:
		s := v.String()
		if limit == 0 {
			limit = defaultMaxString
		}
		if int64(len(s)) > limit || !utf8.ValidString(s) {
			t.Fatalf("%s: accepted %d bytes (limit %d), valid UTF-8 %v", path, len(s), limit, utf8.ValidString(s))
		}
		for _, r := range s {
			if (r < 0x20 || r == 0x7f) && !(strings.Contains(tag, "text") && strings.ContainsRune("\t\n\r", r)) {
				t.Fatalf("%s: accepted the control character %U", path, r)
			}
		}
	case reflect.Slice, reflect.Map:
		if limit == 0 {
			limit = defaultMaxEntries
		}
		if int64(v.Len()) > limit {
			t.Fatalf("%s: accepted %d entries (limit %d)", path, v.Len(), limit)
		}
		if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				assertClean(t, v.Index(i), path+"[]", "")
			}
			return
		}
		for it := v.MapRange(); it.Next(); {
			assertClean(t, it.Key(), path+" key", "")
			assertClean(t, it.Value(), path+"[]", "")
		}
	}
}
