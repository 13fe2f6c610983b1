package npmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"crucible/internal/baseline"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/router"
)

// minNodeMajor is the oldest Node.js the test runs on.
const minNodeMajor = 18

// TestOpenAINPMClient runs client.mjs with the official openai npm package
// against a router in front of two baseline model servers, and against one
// of those model servers directly: a models list, chat completions (plain,
// streamed, with include_usage, with n and with logprobs), text
// completions (plain and streamed), models.retrieve, embeddings, /healthz
// and unknown models.
func TestOpenAINPMClient(t *testing.T) {
	node := lookNode(t)
	modules := installOpenAI(t)

	ds, err := mcq.ParseFile("../../app/demodata/siqa-sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var specs []router.WorkerSpec
	var workers []string
	for range 2 {
		h, err := mcqtest.New(mcqtest.Config{Policies: []string{mcqtest.PolicyOracle, mcqtest.PolicyFirst}, Key: ds})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		specs = append(specs, router.WorkerSpec{URL: srv.URL})
		workers = append(workers, srv.URL)
	}
	rt, err := router.New(router.Config{Workers: specs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt.CheckHealth(ctx)
	// The lean server, as crucible router serves the router.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lean := &router.Server{Router: rt}
	go lean.Serve(ln)
	t.Cleanup(func() { lean.Close() })
	rsrv := struct{ URL string }{"http://" + ln.Addr().String()}

	it := ds.Items[0]
	lines := []string{it.Context, it.Question}
	for i, c := range it.Choices {
		lines = append(lines, mcq.Letter(i)+") "+c)
	}
	prompt := strings.Join(lines, "\n")
	wantAnswer := mcq.Letter(it.Answer) + ") " + it.Choices[it.Answer]
	var head []any
	for _, v := range baseline.Embed("the cat sat", baseline.DefaultEmbeddingDims)[:4] {
		head = append(head, float64(v))
	}

	script, err := os.ReadFile("client.mjs")
	if err != nil {
		t.Fatal(err)
	}
	// ESM resolves "openai" from the script's directory upwards, so the
	// script runs from the directory holding node_modules.
	scriptPath := filepath.Join(t.TempDir(), "client.mjs")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(modules, "node_modules"), filepath.Join(filepath.Dir(scriptPath), "node_modules")); err != nil {
		t.Fatal(err)
	}
	for _, target := range []struct {
		name, url string
		models    []any
	}{
		// The router sorts its union; a model server lists in its own order.
		{"router", rsrv.URL, []any{"baseline-first", "baseline-oracle"}},
		{"model-server", workers[0], []any{"baseline-oracle", "baseline-first"}},
	} {
		t.Run(target.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, node, scriptPath)
			cmd.Env = append(os.Environ(),
				"CRUCIBLE_BASE_URL="+target.url+"/v1",
				"CRUCIBLE_MODEL=baseline-oracle",
				"CRUCIBLE_PROMPT="+prompt,
				"OPENAI_LOG=off",
			)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node client.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
			}
			checkSteps(t, out, target.models, it, wantAnswer, head)
		})
	}
}

// checkSteps checks client.mjs's output lines.
func checkSteps(t *testing.T, out []byte, models []any, it mcq.Item, wantAnswer string, embedHead []any) {
	t.Helper()
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("client.mjs printed a non-JSON line %q: %v", sc.Text(), err)
		}
		steps[m["step"].(string)] = m
	}
	tests := []struct {
		name, step, field string
		want              any
	}{
		{"the models list names every model served", "models", "ids", models},
		{"a chat completion answers with the key's choice", "chat", "content", wantAnswer},
		{"a chat completion names its model", "chat", "model", "baseline-oracle"},
		{"a chat completion is a chat.completion object", "chat", "object", "chat.completion"},
		{"a streamed completion reassembles to the same answer", "stream", "content", wantAnswer},
		{"a streamed completion ends with finish_reason stop", "stream", "finish", "stop"},
		{"a text completion answers with the key's letter", "completion", "text", " " + mcq.Letter(it.Answer)},
		{"an unknown model is a 404 API error", "error", "status", float64(404)},
		{"an unknown model carries code model_not_found", "error", "code", "model_not_found"},
		{"a streamed text completion yields the key's letter", "completion_stream", "text", " " + mcq.Letter(it.Answer)},
		{"a streamed text completion ends with its usage", "completion_stream", "completion_tokens", float64(1)},
		{"a streamed chat completion with include_usage still yields the answer", "chat_usage", "content", wantAnswer},
		{"a streamed chat completion with include_usage ends with its usage", "chat_usage", "has_usage", true},
		{"models.retrieve returns the model", "retrieve", "id", "baseline-oracle"},
		{"models.retrieve returns a model object", "retrieve", "object", "model"},
		{"models.retrieve of an unknown model is a 404", "retrieve_missing", "status", float64(404)},
		{"models.retrieve of an unknown model carries code model_not_found", "retrieve_missing", "code", "model_not_found"},
		{"n gives n choices", "n", "choices", float64(3)},
		{"the n choices are the answer", "n", "same", true},
		{"logprobs tokens spell the answer", "logprobs", "tokens_join", wantAnswer},
		{"every token has top_logprobs alternatives", "logprobs", "tops", []any{float64(2)}},
		{"embeddings embed every input", "embeddings", "count", float64(2)},
		{"embeddings have the default dimensions", "embeddings", "dims", float64(baseline.DefaultEmbeddingDims)},
		{"embeddings decode to the baseline's vector", "embeddings", "head", embedHead},
		{"healthz answers 200", "healthz", "status", float64(200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := steps[tt.step]
			if !ok {
				t.Fatalf("client.mjs printed no %q step; output:\n%s", tt.step, out)
			}
			got, _ := json.Marshal(s[tt.field])
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s.%s = %s, want %s", tt.step, tt.field, got, want)
			}
		})
	}
	if n, _ := steps["stream"]["chunks"].(float64); n < 3 {
		t.Errorf("stream had %v chunks, want several (role, words, finish)", n)
	}
}

// lookNode returns the node binary or skips the test.
func lookNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; install Node.js >= 18 and npm (Debian: apt-get install nodejs npm) to run the openai npm client test")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed; install it (Debian: apt-get install npm) to run the openai npm client test")
	}
	v, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(v)), "v"), ".", 2)[0])
	if major < minNodeMajor {
		t.Skipf("node %s is older than %d, which the openai package needs", strings.TrimSpace(string(v)), minNodeMajor)
	}
	return node
}

// installOpenAI runs npm ci for package-lock.json into a cache directory
// keyed by the lock file's digest (reused across runs) and returns it.
func installOpenAI(t *testing.T) string {
	t.Helper()
	lock, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(append([]byte(nil), pkg...), lock...))
	root := os.Getenv("CRUCIBLE_NPM_CACHE")
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		root = filepath.Join(cache, "crucible", "npmtest")
	}
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err == nil {
		return dir
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(root, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s failed (CI must reach the npm registry; set CRUCIBLE_NPM_CACHE to a directory holding a prepared install to work offline): %v\n%s", tmp, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		// Another run may have installed it first; use theirs.
		if _, serr := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); serr != nil {
			t.Fatalf("move npm install into the cache: %v", err)
		}
	}
	return dir
}
