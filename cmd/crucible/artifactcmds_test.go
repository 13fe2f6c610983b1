package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/artifact"
	"crucible/internal/identity"
)

func artifactRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runArtifact(context.Background(), args, &out, &errb)
	return out.String(), err
}

// TestArtifactCommands digests a toy artifact with a commitment, reads its
// facts under a cap, and fetches it into a cache twice: as committed, then
// tampered.
func TestArtifactCommands(t *testing.T) {
	dir := t.TempDir()
	header := []byte(`{"w":{"dtype":"F32","shape":[4,8],"data_offsets":[0,128]},"b":{"dtype":"F32","shape":[8],"data_offsets":[128,160]},"o":{"dtype":"F32","shape":[8,2],"data_offsets":[160,224]}}`)
	var st bytes.Buffer
	binary.Write(&st, binary.LittleEndian, uint64(len(header)))
	st.Write(header)
	st.Write(make([]byte, 224))
	for name, body := range map[string][]byte{"model.safetensors": st.Bytes(), "config.json": []byte(`{"architectures":["Toy"]}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "me.key")
	if err := key.Save(keyFile); err != nil {
		t.Fatal(err)
	}
	out, err := artifactRun(t, "hash", "--dir", dir, "--key", keyFile, "--at", "2026-12-06T10:00:00Z", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var h artifactHash
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatal(err)
	}
	tree, _ := artifact.HashTree(dir, artifact.DefaultLimits())
	if h.Digest != tree.Digest || h.KeyID != key.ID() || h.Commitment == "" || len(h.Files) != 2 {
		t.Fatalf("hash %+v", h)
	}
	out, err = artifactRun(t, "facts", "--dir", dir, "--max-parameters", "56", "--json")
	if err != nil || !strings.Contains(out, `"parameters": 56`) || !strings.Contains(out, `"architecture": "Toy"`) {
		t.Fatalf("facts: %s %v", out, err)
	}
	if _, err := artifactRun(t, "facts", "--dir", dir, "--max-parameters", "55"); err == nil || !strings.Contains(err.Error(), "at most 55") {
		t.Fatalf("facts over the cap: %v", err)
	}
	cache := t.TempDir()
	out, err = artifactRun(t, "fetch", "--digest", tree.Digest, "--path", dir, "--model-cache", cache, "--json")
	if err != nil || !strings.Contains(out, filepath.Join(cache, "entries", tree.Digest)) {
		t.Fatalf("fetch: %s %v", out, err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["Swapped"]}`), 0o644)
	if _, err := artifactRun(t, "fetch", "--digest", tree.Digest, "--path", dir, "--model-cache", t.TempDir()); err == nil ||
		!strings.Contains(err.Error(), "artifact digest mismatch: committed "+tree.Digest) {
		t.Fatalf("tampered fetch: %v", err)
	}
}
