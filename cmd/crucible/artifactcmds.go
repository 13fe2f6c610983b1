package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/artifact"
	"crucible/internal/identity"
)

// runArtifact works on model artifacts (weights published as files):
// crucible artifact hash|facts|fetch.
func runArtifact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := subcommand(args, "artifact",
		verb{"hash", "digest an artifact's file tree (and its commitment for a key)"},
		verb{"facts", "read an artifact's facts: parameters, bytes, files"},
		verb{"fetch", "fetch an artifact into the model cache and verify its digest"})
	if err != nil {
		return err
	}
	switch verb {
	case "hash":
		return runArtifactHash(rest, stdout, stderr)
	case "facts":
		return runArtifactFacts(rest, stdout, stderr)
	}
	return runArtifactFetch(ctx, rest, stdout, stderr)
}

// artifactHash is what `artifact hash` prints.
type artifactHash struct {
	artifact.Tree
	KeyID       string `json:"key_id,omitempty"`
	CommittedAt string `json:"committed_at,omitempty"`
	Commitment  string `json:"commitment,omitempty"`
}

func runArtifactHash(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("artifact hash", `Digest an artifact's file tree: sha256 over each regular file's relative name, size
and sha256, in name order (.git, .hg, .svn and a top-level .cache are left out;
symbolic links and special files are refused). With --key, also the commitment that
binds the digest to the key and the commit time, as a submission records it.`,
		"crucible artifact hash --dir ./my-model --key me.key --at 2026-12-06T10:00:00Z --json", stderr)
	dir := fs.String("dir", "", "the artifact's directory (required)")
	key := fs.String("key", "", "key file: also print the commitment for this key")
	at := fs.String("at", "", "commit time for the commitment (RFC 3339; default now)")
	o := addOutputFlags(fs, "print the tree, its digest and the commitment as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("--dir DIR is required")
	}
	if *at != "" && *key == "" {
		return usagef("--at needs --key")
	}
	tree, err := artifact.HashTree(*dir, artifact.DefaultLimits())
	if err != nil {
		return err
	}
	out := artifactHash{Tree: tree}
	if *key != "" {
		k, err := identity.Load(*key)
		if err != nil {
			return err
		}
		when := time.Now().UTC()
		if *at != "" {
			if when, err = time.Parse(time.RFC3339Nano, *at); err != nil {
				return usagef("--at %q: %v", *at, err)
			}
		}
		out.KeyID, out.CommittedAt = k.ID(), when.UTC().Format(time.RFC3339Nano)
		out.Commitment = artifact.Commitment(tree.Digest, out.KeyID, when)
	}
	return o.emit(stdout, out, func() error {
		fmt.Fprintf(stdout, "digest      %s\nfiles       %d (%d bytes)\n", tree.Digest, len(tree.Files), tree.Bytes)
		if out.Commitment != "" {
			fmt.Fprintf(stdout, "key         %s\ncommitted   %s\ncommitment  %s\n", out.KeyID, out.CommittedAt, out.Commitment)
		}
		return nil
	})
}

func runArtifactFacts(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("artifact facts", `Read what an artifact's files say: the parameter count from the safetensors headers
(summed over shards) or else the GGUF tensor infos, the architecture from config.json
(or GGUF metadata), whether tokenizer_config.json (or the GGUF) has a chat template. With caps, refuse (exit 1) an artifact over them, as a
competition does at submit time.`,
		"crucible artifact facts --dir ./my-model --max-parameters 8000000000 --json", stderr)
	dir := fs.String("dir", "", "the artifact's directory (required)")
	maxParams := fs.Int64("max-parameters", 0, "refuse more parameters than this (0: no cap)")
	maxBytes := fs.Int64("max-bytes", 0, "refuse a tree larger than this many bytes (0: no cap)")
	o := addOutputFlags(fs, "print the facts as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("--dir DIR is required")
	}
	tree, err := artifact.HashTree(*dir, artifact.DefaultLimits())
	if err != nil {
		return err
	}
	facts, err := artifact.ReadFacts(*dir, tree)
	if err != nil {
		return err
	}
	if err := artifact.CheckCaps(facts, artifact.Caps{MaxParameters: *maxParams, MaxBytes: *maxBytes}); err != nil {
		return err
	}
	return o.emit(stdout, facts, func() error {
		fmt.Fprintf(stdout, "parameters     %d (%d safetensors files)\nbytes          %d\narchitecture   %s\nchat template  %v\n",
			facts.Parameters, len(facts.Shards), facts.Bytes, facts.Architecture, facts.ChatTemplate)
		if len(facts.GGUF) > 0 {
			fmt.Fprintf(stdout, "gguf files     %v\n", facts.GGUF)
		}
		return nil
	})
}

// artifactFetched is what `artifact fetch` prints.
type artifactFetched struct {
	Digest  string  `json:"digest"`
	Dir     string  `json:"dir"`
	Seconds float64 `json:"seconds"`
}

func runArtifactFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("artifact fetch", `Fetch an artifact into the model cache and verify it: the fetched tree's digest must
equal --digest, else it is discarded ("artifact digest mismatch"). Sources: --path
(a local directory, copied), --url (file:// .tar or .tar.gz), or --repo and --revision
through --model-fetcher, a command template run without a shell ({repo}, {revision}
and {dir} are substituted inside each argument).`,
		"crucible artifact fetch --digest 3f2a... --repo org/model --revision main --model-cache ~/.cache/crucible-models --model-fetcher 'huggingface-cli download {repo} --revision {revision} --local-dir {dir}'", stderr)
	digest := fs.String("digest", "", "the committed tree digest (required)")
	path := fs.String("path", "", "a local artifact directory")
	url := fs.String("url", "", "a file:// URL of a .tar or .tar.gz")
	repo := fs.String("repo", "", "a hub repository ORG/NAME (with --revision and --model-fetcher)")
	revision := fs.String("revision", "", "the repository's revision: a branch, tag or commit")
	cacheDir := fs.String("model-cache", "", "the model cache directory (required)")
	cacheBytes := fs.Int64("model-cache-bytes", 100<<30, "the model cache's size bound in bytes (LRU eviction)")
	fetcher := fs.String("model-fetcher", "", "command template for --repo, e.g. 'huggingface-cli download {repo} --revision {revision} --local-dir {dir}'")
	timeout := fs.Duration("fetch-timeout", time.Hour, "kill the fetch command's process group after this long")
	o := addOutputFlags(fs, "print the digest, cache directory and time taken as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *digest == "" || *cacheDir == "" {
		return usagef("--digest and --model-cache are required")
	}
	c, err := artifact.OpenCache(*cacheDir, *cacheBytes)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	dir, release, err := c.Get(ctx, *digest, artifact.Fetcher{Command: *fetcher, Timeout: *timeout},
		artifact.Source{Path: *path, URL: *url, Repo: *repo, Revision: *revision})
	if err != nil {
		return err
	}
	release()
	out := artifactFetched{Digest: *digest, Dir: dir, Seconds: time.Since(start).Seconds()}
	return o.emit(stdout, out, func() error {
		_, err := fmt.Fprintf(stdout, "verified %s in %.3fs\n%s\n", out.Digest, out.Seconds, out.Dir)
		return err
	})
}

const artifactSubmitSummary = `Submit model files to a task, mcq or roleplay competition created with --submissions artifacts. The hub records
the tree digest and the commitment binding it to your key and the commit time; its workers fetch the
files, check the digest (a mismatch fails the submission), read the parameter count, serve the model
with their launcher and evaluate it. The same tree entered later, by any key, is a copy: ranked, earning
nothing. With --path the digest is computed here; with --repo or --url give it (crucible artifact hash).`

const artifactSubmitExample = "crucible submit artifact --competition c-abc123 --path /models/mine --key me.key"

// artifactRequest parses the artifact flags of crucible submit artifact
// (fs already has the common ones) into the submission request.
func artifactRequest(fs *flag.FlagSet, args []string, comp *string) (apiv1.CreateSubmissionRequest, error) {
	source := addArtifactFlags(fs)
	if err := parse(fs, args); err != nil {
		return apiv1.CreateSubmissionRequest{}, err
	}
	if *comp == "" {
		return apiv1.CreateSubmissionRequest{}, usagef("--competition is required")
	}
	src, err := source()
	if err == nil && src == nil {
		err = errNoArtifactSource
	}
	if err != nil {
		return apiv1.CreateSubmissionRequest{}, err
	}
	return apiv1.CreateSubmissionRequest{Artifact: src}, nil
}

var errNoArtifactSource = usagef("one of --path, --repo (with --revision) or --url is required")

// addArtifactFlags adds the flags naming an artifact's source (--path,
// --repo with --revision, --url) and --digest to fs; after parsing, the
// returned function checks them and gives the source (nil when none of
// them is set), hashing --path here.
func addArtifactFlags(fs *flag.FlagSet) func() (*apiv1.ArtifactSource, error) {
	repo := fs.String("repo", "", "a hub repository ORG/NAME the workers fetch with their --model-fetcher (with --revision and --digest)")
	revision := fs.String("revision", "", "the repository's commit (with --repo)")
	path := fs.String("path", "", "a directory the hub's workers can read (the digest is computed here)")
	url := fs.String("url", "", "a file:// tarball the hub's workers can read (with --digest)")
	digest := fs.String("digest", "", "the tree digest (crucible artifact hash --dir DIR); computed from --path when absent")
	return func() (*apiv1.ArtifactSource, error) {
		src := apiv1.ArtifactSource{Repo: *repo, Revision: *revision, URL: *url, Digest: *digest}
		switch {
		case *path != "":
			if *repo != "" || *url != "" {
				return nil, usagef("give one of --path, --repo (with --revision) or --url")
			}
			abs, err := filepath.Abs(*path)
			if err != nil {
				return nil, err
			}
			tree, err := artifact.HashTree(abs, artifact.DefaultLimits())
			if err != nil {
				return nil, err
			}
			if *digest != "" && *digest != tree.Digest {
				return nil, usagef("--digest %s, but %s hashes to %s", *digest, abs, tree.Digest)
			}
			src.Path, src.Digest = abs, tree.Digest
		case *repo == "" && *url == "" && *revision == "" && *digest == "":
			return nil, nil
		case *repo == "" && *url == "":
			return nil, errNoArtifactSource
		case *digest == "":
			return nil, usagef("--digest is required with --repo or --url: the tree digest of the files (crucible artifact hash --dir DIR)")
		}
		return &src, nil
	}
}

// modelFlags are the worker flags that serve artifact submissions.
type modelFlags struct {
	cache, fetcher, launcher *string
	cacheBytes               *int64
	maxLaunched              *int
	fetchTimeout, start      *time.Duration
}

func addModelFlags(fs *flag.FlagSet) modelFlags {
	return modelFlags{
		cache:        fs.String("model-cache", "", "`DIR` of the content-addressed model cache for artifact submissions (with --model-launcher)"),
		cacheBytes:   fs.Int64("model-cache-bytes", 100<<30, "bound of the model cache in bytes; least recently used artifacts are evicted"),
		fetcher:      fs.String("model-fetcher", "", "command fetching repository artifacts, e.g. 'huggingface-cli download {repo} --revision {revision} --local-dir {dir}'"),
		fetchTimeout: fs.Duration("model-fetch-timeout", 2*time.Hour, "bound on one fetch (its process group is killed after it)"),
		launcher: fs.String("model-launcher", "", "command serving an artifact on loopback, e.g. 'vllm serve {dir} --port {port} --served-model-name {name}'\n"+
			"or 'llama-server -m {dir}/{gguf} --port {port} --alias {name}' (crucible model-server --artifact {dir} in tests)"),
		maxLaunched: fs.Int("max-launched", 1, "model servers this process runs at once"),
		start:       fs.Duration("model-start-timeout", 10*time.Minute, "bound on a model server's start (until /v1/models lists the model)"),
	}
}

func (m modelFlags) config() app.Models {
	return app.Models{CacheDir: *m.cache, CacheBytes: *m.cacheBytes, Fetcher: *m.fetcher, FetchTimeout: *m.fetchTimeout,
		Launcher: *m.launcher, MaxLaunched: *m.maxLaunched, StartTimeout: *m.start}
}
