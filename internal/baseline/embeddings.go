package baseline

// This file holds POST /v1/embeddings: a deterministic hashed bag of words,
// so a router or client has real vectors to pass through and compare.
// Each word (a run of letters and digits, lowercased) adds ±1 to the
// coordinate its FNV-1a hash picks (the hash's top bit picks the sign); the
// vector is then scaled to unit length (all zeros for an input without
// words). Texts sharing words therefore have a positive cosine.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"unicode"

	"crucible/internal/inference"
)

// Bounds on one embeddings request, checked before any work.
const (
	// DefaultEmbeddingDims is the vector length without "dimensions".
	DefaultEmbeddingDims = 64
	// MaxEmbeddingDims bounds "dimensions".
	MaxEmbeddingDims = 1024
	// MaxEmbeddingInputs bounds the inputs of one request.
	MaxEmbeddingInputs = 256
)

func (s *server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req inference.EmbeddingRequest
	if !decode(w, r, &req) {
		return
	}
	if _, ok := s.model(w, req.Model); !ok {
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if err := json.Unmarshal(req.Input, &inputs); err != nil || len(inputs) == 0 || len(inputs) > MaxEmbeddingInputs {
		writeParamError(w, "input", fmt.Sprintf("input must be a string or an array of 1 to %d strings (token arrays are not supported)", MaxEmbeddingInputs))
		return
	}
	for _, in := range inputs {
		if in == "" {
			writeParamError(w, "input", "input must not contain empty strings")
			return
		}
	}
	dims := DefaultEmbeddingDims
	if req.Dimensions != nil {
		dims = *req.Dimensions
		if dims < 1 || dims > MaxEmbeddingDims {
			writeParamError(w, "dimensions", fmt.Sprintf("dimensions must be between 1 and %d", MaxEmbeddingDims))
			return
		}
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		writeParamError(w, "encoding_format", `encoding_format must be "float" or "base64"`)
		return
	}
	if !s.wait(r) {
		return
	}
	out := inference.EmbeddingList{Object: "list", Model: req.Model, Data: make([]inference.Embedding, len(inputs))}
	for i, in := range inputs {
		vec := Embed(in, dims)
		var raw []byte
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(vec))
			for j, v := range vec {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(v))
			}
			raw, _ = json.Marshal(base64.StdEncoding.EncodeToString(b))
		} else {
			raw, _ = json.Marshal(vec)
		}
		out.Data[i] = inference.Embedding{Object: "embedding", Index: i, Embedding: raw}
		out.Usage.PromptTokens += countTokens(in)
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	writeJSON(w, http.StatusOK, out)
}

// Embed is the baseline's embedding of text with dims coordinates.
func Embed(text string, dims int) []float32 {
	acc := make([]float64, dims)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, wd := range words {
		h := fnv.New64a()
		h.Write([]byte(wd))
		sum := h.Sum64()
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		acc[(sum&(1<<63-1))%uint64(dims)] += sign
	}
	var norm float64
	for _, v := range acc {
		norm += v * v
	}
	vec := make([]float32, dims)
	if norm == 0 {
		return vec
	}
	norm = math.Sqrt(norm)
	for i, v := range acc {
		vec[i] = float32(v / norm)
	}
	return vec
}
