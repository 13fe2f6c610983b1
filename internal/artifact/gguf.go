package artifact

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
)

// Bounds on a GGUF file's header (metadata and tensor infos), which is read
// and skipped here without allocating more than one string at a time.
const (
	maxGGUFHeaderBytes = 256 << 20 // metadata holds the tokenizer: ~10 MB for large vocabularies
	maxGGUFString      = 16 << 20
	maxGGUFTensors     = 1 << 20
	maxGGUFKV          = 1 << 20
	maxGGUFDims        = 4 // GGML_MAX_DIMS
	maxGGUFArrayDepth  = 3
)

// GGUFInfo is what a GGUF file's header says.
type GGUFInfo struct {
	Parameters   int64  // sum over the tensor infos of the product of their dimensions
	Architecture string // general.architecture
	ChatTemplate bool   // tokenizer.chat_template is a non-empty string
}

// ReadGGUF reads a GGUF (version 2 or 3) file's metadata and tensor-info
// section: bounded in bytes, strings, counts, dimensions and array nesting;
// a parameter count over 8 per byte of the file (no GGML type stores a
// weight in under a bit) is refused as a lie.
func ReadGGUF(path string) (GGUFInfo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return GGUFInfo{}, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return GGUFInfo{}, err
	}
	g := &ggufReader{r: bufio.NewReader(io.LimitReader(fh, maxGGUFHeaderBytes))}
	info, err := g.read()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("header ends early or is over %d bytes", maxGGUFHeaderBytes)
		}
		return GGUFInfo{}, fmt.Errorf("%s: gguf: %w", path, err)
	}
	if hi, lo := bits.Mul64(uint64(fi.Size()), 8); hi != 0 || uint64(info.Parameters) > lo {
		return GGUFInfo{}, fmt.Errorf("%s: gguf: %d parameters declared in %d bytes", path, info.Parameters, fi.Size())
	}
	return info, nil
}

type ggufReader struct{ r *bufio.Reader }

func (g *ggufReader) u32() (uint32, error) {
	var b [4]byte
	_, err := io.ReadFull(g.r, b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

func (g *ggufReader) u64() (uint64, error) {
	var b [8]byte
	_, err := io.ReadFull(g.r, b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

// str reads a string; keep false discards it without allocating.
func (g *ggufReader) str(keep bool) (string, error) {
	n, err := g.u64()
	if err != nil {
		return "", err
	}
	if n > maxGGUFString {
		return "", fmt.Errorf("string of %d bytes; at most %d", n, maxGGUFString)
	}
	if !keep {
		_, err := io.CopyN(io.Discard, g.r, int64(n))
		return "", err
	}
	b := make([]byte, n)
	_, err = io.ReadFull(g.r, b)
	return string(b), err
}

// fixedSize are the byte sizes of GGUF's fixed-size value types.
var fixedSize = map[uint32]int64{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

const (
	ggufString = 8
	ggufArray  = 9
)

// skip discards one value of type typ.
func (g *ggufReader) skip(typ uint32, depth int) error {
	if size, ok := fixedSize[typ]; ok {
		_, err := io.CopyN(io.Discard, g.r, size)
		return err
	}
	switch typ {
	case ggufString:
		_, err := g.str(false)
		return err
	case ggufArray:
		if depth >= maxGGUFArrayDepth {
			return fmt.Errorf("arrays nested deeper than %d", maxGGUFArrayDepth)
		}
		elem, err := g.u32()
		if err != nil {
			return err
		}
		n, err := g.u64()
		if err != nil {
			return err
		}
		if size, ok := fixedSize[elem]; ok {
			if n > maxGGUFHeaderBytes/uint64(size) {
				return fmt.Errorf("array of %d values over the header bound", n)
			}
			_, err := io.CopyN(io.Discard, g.r, int64(n)*size)
			return err
		}
		for range n { // each element reads at least 4 bytes, so the byte bound ends the loop
			if err := g.skip(elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown value type %d", typ)
}

func (g *ggufReader) read() (GGUFInfo, error) {
	var info GGUFInfo
	magic, err := g.u32()
	if err != nil {
		return info, err
	}
	if magic != 0x46554747 { // "GGUF"
		return info, errors.New("not a GGUF file (bad magic)")
	}
	version, err := g.u32()
	if err != nil {
		return info, err
	}
	if version != 2 && version != 3 {
		return info, fmt.Errorf("version %d; versions 2 and 3 are read", version)
	}
	tensors, err := g.u64()
	if err != nil {
		return info, err
	}
	kvs, err := g.u64()
	if err != nil {
		return info, err
	}
	if tensors > maxGGUFTensors || kvs > maxGGUFKV {
		return info, fmt.Errorf("%d tensors and %d metadata keys; at most %d and %d", tensors, kvs, maxGGUFTensors, maxGGUFKV)
	}
	for range kvs {
		key, err := g.str(true)
		if err != nil {
			return info, err
		}
		typ, err := g.u32()
		if err != nil {
			return info, err
		}
		if typ == ggufString && (key == "general.architecture" || key == "tokenizer.chat_template") {
			v, err := g.str(true)
			if err != nil {
				return info, err
			}
			if key == "general.architecture" {
				info.Architecture = v
			} else {
				info.ChatTemplate = v != ""
			}
			continue
		}
		if err := g.skip(typ, 0); err != nil {
			return info, fmt.Errorf("metadata %q: %w", key, err)
		}
	}
	for range tensors {
		name, err := g.str(true)
		if err != nil {
			return info, err
		}
		ndims, err := g.u32()
		if err != nil {
			return info, err
		}
		if ndims > maxGGUFDims {
			return info, fmt.Errorf("tensor %q has %d dimensions; at most %d", name, ndims, maxGGUFDims)
		}
		shape := make([]int64, ndims)
		for i := range shape {
			d, err := g.u64()
			if err != nil {
				return info, err
			}
			if d > 1<<62 {
				return info, fmt.Errorf("tensor %q: dimension %d overflows", name, d)
			}
			shape[i] = int64(d)
		}
		count, err := elements(shape)
		if err != nil {
			return info, fmt.Errorf("tensor %q: %w", name, err)
		}
		if count > 1<<62-info.Parameters {
			return info, fmt.Errorf("tensor %q: parameter count overflows", name)
		}
		info.Parameters += count
		if _, err := io.CopyN(io.Discard, g.r, 12); err != nil { // type (u32) and offset (u64)
			return info, err
		}
	}
	return info, nil
}
