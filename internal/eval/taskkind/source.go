package taskkind

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"crucible/internal/competition"
	"crucible/internal/eval/task"
)

// MaxSentData bounds the rows one request carries: the hub's bound on a
// request's dataset (apiv1: input:"text,max=32MiB"). A data file larger
// than this is refused before it is read, and its rows once encoded as
// JSONL must fit too (Parquet compresses).
const MaxSentData = 32 << 20

// Source is what the CLI sends for its task flags: ref is a task file
// (sent as its text) or a preset's name, data a rows file ("": none) and
// numFewshot the few-shot count (negative: the task's). The rows are read
// in the file's format (JSONL, CSV or Parquet) and returned as JSONL, the
// one format the hub reads; a bad row is reported with its file and line
// before anything is sent.
func Source(ref, data string, numFewshot int) (competition.TaskSource, []byte, error) {
	var src competition.TaskSource
	if st, err := os.Stat(ref); err == nil && !st.IsDir() {
		text, err := os.ReadFile(ref)
		if err != nil {
			return src, nil, err
		}
		src.File, src.YAML = filepath.Base(ref), string(text)
	} else {
		src.Preset = ref
	}
	if numFewshot >= 0 {
		src.NumFewshot = &numFewshot
	}
	if data == "" {
		return src, nil, nil
	}
	rows, err := SentRows(data)
	return src, rows, err
}

// SentRows reads a data file with the task package's reader for its
// format and encodes its rows as JSONL, each row one JSON object. The
// file's size is checked against MaxSentData before it is read, and the
// encoded rows' size as they are written.
func SentRows(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxSentData {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d (%d MiB) a hub request carries", path, st.Size(), MaxSentData, MaxSentData>>20)
	}
	rows, err := task.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no rows", path)
	}
	var out bytes.Buffer
	for _, r := range rows {
		line, err := json.Marshal(r.Doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Pos, err)
		}
		if out.Len()+len(line)+1 > MaxSentData {
			return nil, fmt.Errorf("%s: the rows up to here take more than the %d (%d MiB) a hub request carries as JSONL", r.Pos, MaxSentData, MaxSentData>>20)
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}
