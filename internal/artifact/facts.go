package artifact

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
)

// MaxHeaderBytes bounds a safetensors JSON header (the format's own reader
// refuses headers over 100 MB).
const MaxHeaderBytes = 100 << 20

// maxConfigBytes bounds config.json and tokenizer_config.json.
const maxConfigBytes = 4 << 20

// Facts are what the files say about a model.
type Facts struct {
	// Parameters is the sum over every tensor of every .safetensors file of
	// the product of its shape; in a tree without safetensors files, the
	// same sum over the .gguf files' tensor infos (all of them: split
	// shards add up, and a tree holding several quantisations counts each,
	// which errs on the side of a parameter cap).
	Parameters int64 `json:"parameters"`
	// Shards are the safetensors files counted, in name order.
	Shards []string `json:"shards,omitempty"`
	// Bytes is the size of the whole tree.
	Bytes int64 `json:"bytes"`
	// Architecture is config.json's architectures[0], else its model_type,
	// else a GGUF file's general.architecture.
	Architecture string `json:"architecture,omitempty"`
	// ChatTemplate reports a chat_template in tokenizer_config.json, a
	// chat_template.jinja file or a GGUF tokenizer.chat_template.
	ChatTemplate bool `json:"chat_template"`
	// GGUF lists the .gguf files read, in name order.
	GGUF []string `json:"gguf,omitempty"`
}

// ReadFacts reads the facts of the tree at dir, as hashed into t (so only
// listed regular files are read, each with a bounded read).
func ReadFacts(dir string, t Tree) (Facts, error) {
	f := Facts{Bytes: t.Bytes}
	var ggufParams int64
	ggufArch := ""
	for _, file := range t.Files {
		path := filepath.Join(dir, filepath.FromSlash(file.Name))
		switch {
		case strings.HasSuffix(file.Name, ".safetensors"):
			n, err := SafetensorsParameters(path)
			if err != nil {
				return Facts{}, err
			}
			if n > 1<<62-f.Parameters {
				return Facts{}, fmt.Errorf("%s: parameter count overflows", file.Name)
			}
			f.Parameters += n
			f.Shards = append(f.Shards, file.Name)
		case strings.HasSuffix(file.Name, ".gguf"):
			g, err := ReadGGUF(path)
			if err != nil {
				return Facts{}, err
			}
			if g.Parameters > 1<<62-ggufParams {
				return Facts{}, fmt.Errorf("%s: parameter count overflows", file.Name)
			}
			ggufParams += g.Parameters
			f.ChatTemplate = f.ChatTemplate || g.ChatTemplate
			if ggufArch == "" {
				ggufArch = g.Architecture
			}
			f.GGUF = append(f.GGUF, file.Name)
		case file.Name == "config.json":
			var c struct {
				Architectures []string `json:"architectures"`
				ModelType     string   `json:"model_type"`
			}
			if err := readJSON(path, &c); err != nil {
				return Facts{}, err
			}
			f.Architecture = c.ModelType
			if len(c.Architectures) > 0 {
				f.Architecture = c.Architectures[0]
			}
		case file.Name == "tokenizer_config.json":
			var c struct {
				ChatTemplate json.RawMessage `json:"chat_template"`
			}
			if err := readJSON(path, &c); err != nil {
				return Facts{}, err
			}
			if s := string(c.ChatTemplate); s != "" && s != "null" && s != `""` && s != "[]" {
				f.ChatTemplate = true
			}
		case file.Name == "chat_template.jinja":
			f.ChatTemplate = true
		}
	}
	if len(f.Shards) == 0 {
		f.Parameters = ggufParams
	}
	if f.Architecture == "" {
		f.Architecture = ggufArch
	}
	return f, nil
}

func readJSON(path string, v any) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxConfigBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxConfigBytes {
		return fmt.Errorf("%s: over %d bytes", path, maxConfigBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// dtypeBytes are the element sizes of the safetensors dtypes.
var dtypeBytes = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"U16": 2, "I16": 2, "F16": 2, "BF16": 2,
	"U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}

// SafetensorsParameters returns the parameter count of a safetensors file:
// the sum over its tensors of the product of their shapes. It reads the
// 8-byte little-endian header length and the JSON header only, refusing a
// header over MaxHeaderBytes or past the end of the file, negative or
// overflowing shapes, unknown dtypes and data offsets that disagree with the
// shape or fall outside the file.
func SafetensorsParameters(path string) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(fh, lenBuf[:]); err != nil {
		return 0, fmt.Errorf("%s: header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderBytes || int64(n) > fi.Size()-8 {
		return 0, fmt.Errorf("%s: header length %d; at most %d and within the file's %d bytes", path, n, MaxHeaderBytes, fi.Size())
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(fh, header); err != nil {
		return 0, fmt.Errorf("%s: header: %w", path, err)
	}
	var tensors map[string]json.RawMessage
	if err := json.Unmarshal(header, &tensors); err != nil {
		return 0, fmt.Errorf("%s: header: %w", path, err)
	}
	data := fi.Size() - 8 - int64(n)
	var total int64
	for name, raw := range tensors {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Dtype       string  `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return 0, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		count, err := elements(t.Shape)
		if err != nil {
			return 0, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		size, ok := dtypeBytes[t.Dtype]
		if !ok {
			return 0, fmt.Errorf("%s: tensor %q: unknown dtype %q", path, name, t.Dtype)
		}
		if len(t.DataOffsets) != 2 || t.DataOffsets[0] < 0 || t.DataOffsets[1] < t.DataOffsets[0] || t.DataOffsets[1] > data {
			return 0, fmt.Errorf("%s: tensor %q: data_offsets %v outside the %d data bytes", path, name, t.DataOffsets, data)
		}
		if hi, lo := bits.Mul64(uint64(count), uint64(size)); hi != 0 || lo != uint64(t.DataOffsets[1]-t.DataOffsets[0]) {
			return 0, fmt.Errorf("%s: tensor %q: shape %v of %s does not match data_offsets %v", path, name, t.Shape, t.Dtype, t.DataOffsets)
		}
		total += count // count ≤ data bytes, so the sum cannot overflow
	}
	return total, nil
}

// elements is the product of a shape, refusing negative dimensions and
// products over 2^62.
func elements(shape []int64) (int64, error) {
	count := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		hi, lo := bits.Mul64(count, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		count = lo
	}
	return int64(count), nil
}

// Caps bound what a competition accepts; zero means no cap.
type Caps struct {
	MaxParameters int64 `json:"max_parameters,omitempty"`
	MaxBytes      int64 `json:"max_bytes,omitempty"`
}

// CheckCaps refuses facts over the caps with the reason.
func CheckCaps(f Facts, c Caps) error {
	if c.MaxParameters > 0 && f.Parameters > c.MaxParameters {
		return fmt.Errorf("artifact has %d parameters; this competition accepts at most %d", f.Parameters, c.MaxParameters)
	}
	if c.MaxBytes > 0 && f.Bytes > c.MaxBytes {
		return fmt.Errorf("artifact is %d bytes; this competition accepts at most %d", f.Bytes, c.MaxBytes)
	}
	return nil
}
