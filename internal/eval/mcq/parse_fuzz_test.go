package mcq_test

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"

	"crucible/internal/eval/mcq"
)

var lineError = regexp.MustCompile(`^dataset fuzz: line (\d+): `)

// FuzzParse feeds arbitrary bytes to the dataset reader, which a competition
// creator controls: it must never panic; an error is "no items" or names a
// line that exists; an accepted dataset holds only answerable items with
// unique ids.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"question":"q","choices":["a","b"],"answer":0}`,
		`{"id":"x","context":"c","question":"q","choices":["a","b","c"],"answer":2}` + "\r\n\n" + `{"context":"c","question":"q","answerA":"a","answerB":"b","answerC":"c","label":"3"}`,
		`{"context":"c","question":"q","answerA":"a","answerB":"b","answerC":"c","label":1}`,
		`{"question":"q","choices":["a","b"],"answer":-1}`,
		`{"id":7,"question":"q","choices":["a","b"],"answer":0}` + "\n" + `{"id":"7","question":"q","choices":["a","b"],"answer":1}`,
		"\n\n{nope",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := mcq.Parse(bytes.NewReader(data), "fuzz")
		if err != nil {
			if ds != nil {
				t.Fatalf("Parse returned a dataset with the error %v", err)
			}
			if err.Error() == "dataset fuzz: no items" {
				return
			}
			m := lineError.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error %q names no line", err)
			}
			n, _ := strconv.Atoi(m[1])
			if lines := bytes.Count(data, []byte("\n")) + 1; n < 1 || n > lines {
				t.Fatalf("error %q names line %d of %d", err, n, lines)
			}
			return
		}
		if len(ds.Items) == 0 || len(ds.Digest) != 64 {
			t.Fatalf("accepted a dataset of %d items, digest %q", len(ds.Items), ds.Digest)
		}
		ids := map[string]bool{}
		for i, it := range ds.Items {
			if len(it.Choices) < 2 || len(it.Choices) > mcq.MaxChoices || it.Answer < 0 || it.Answer >= len(it.Choices) || it.ID == "" || ids[it.ID] {
				t.Fatalf("item %d accepted: %+v", i, it)
			}
			ids[it.ID] = true
		}
	})
}
