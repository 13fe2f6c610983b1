package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"crucible/internal/app"
	"crucible/internal/baseline"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/kind"
)

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if isTaskEval(args) {
		return runTaskEval(ctx, args, stdout, stderr)
	}
	fs := newFlags("eval", "Evaluate a model locally, without a server, exactly as the server would: same prompts,\n"+
		"same answer extraction, same score and interval. Check a score before you submit.",
		"crucible eval --kind mcq --dataset internal/app/demodata/siqa-sample.jsonl --base-url http://127.0.0.1:8000/v1 --model my-model --json", stderr)
	kindName := fs.String("kind", "mcq", "task kind: mcq, patch, roleplay or task (eval --kind task --help)")
	dataset := fs.String("dataset", "", "mcq: dataset file (JSONL)")
	tasks := fs.String("tasks", "", "patch: task instances file (JSONL)")
	task := fs.String("task", "", "patch: the instance_id to judge; without --kind, an lm-eval task file or preset (see eval --task NAME --help)")
	patchFile := fs.String("patch", "", "patch: the candidate diff file")
	rf := kinds.AddRoleplayFlags(fs)
	baseURL := fs.String("base-url", "", "the model server's OpenAI base URL")
	model := fs.String("model", "", "model name")
	keyEnv := fs.String("api-key-env", "", "environment variable holding the model server's API key")
	template := fs.String("template", "", "prompt template file (default: the documented mcq template)")
	mode := fs.String("mode", "generative", "generative or loglik")
	concurrency := fs.Int("concurrency", 8, "requests in flight")
	cf := addCacheFlags(fs)
	o := addOutputFlags(fs, "print one JSON object: score, ci_low, ci_high, items, correct")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The registry the server runs answers which kinds exist and what
	// their entries are; the evaluation itself is the server's path.
	reg := cliKinds()
	k, err := reg.Parse(*kindName)
	if err != nil {
		return usagef("%v", err)
	}
	switch reg.Entry(k) {
	case kind.EntryPatch:
		return evalPatch(ctx, *tasks, *task, *patchFile, o, stdout)
	case kind.EntryNone:
		return usagef("a %s competition takes no submissions: there is no model to evaluate", k)
	}
	if *baseURL == "" || *model == "" {
		return usagef("--base-url and --model are required")
	}
	cfg := app.LocalEvalConfig{Kind: k, DatasetPath: *dataset, BaseURL: *baseURL, Model: *model,
		Config: competition.MCQConfig{Mode: *mode}, Concurrency: *concurrency}
	if *keyEnv != "" {
		cfg.APIKey = os.Getenv(*keyEnv)
	}
	if *rf.Personas != "" {
		cfg.DatasetPath = *rf.Personas
	}
	// Every kind reads its own options and ignores the others'.
	if cfg.Options, err = rf.Options(*baseURL); err != nil {
		return err
	}
	if *template != "" {
		t, err := os.ReadFile(*template)
		if err != nil {
			return err
		}
		cfg.Config.Template = string(t)
	}
	lc, err := cf.open()
	if err != nil {
		return err
	}
	defer lc.close(stderr)
	cfg.HTTPClient, cfg.Progress = lc.http, lc.progress(stderr)
	rep, err := app.LocalEval(ctx, cfg)
	if err != nil {
		return err
	}
	return o.emit(stdout, rep, func() error {
		on := rep.Dataset
		if on == "" {
			on = "items " + rep.Digest
		}
		fmt.Fprintf(stdout, "%s on %s: score %.4f  95%% CI [%.4f, %.4f]  %d/%d correct\n",
			rep.Model, on, rep.Score, rep.CILow, rep.CIHigh, rep.Correct, rep.Items)
		for _, n := range slices.Sorted(maps.Keys(rep.Components)) {
			fmt.Fprintf(stdout, "  %-11s %.4f\n", n, rep.Components[n])
		}
		return nil
	})
}

func runModelServer(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("model-server", "Serve deterministic BASELINE models over the OpenAI HTTP API (/v1/models[/{id}],\n"+
		"/v1/chat/completions and /v1/completions incl. streaming, n, include_usage and logprobs, /v1/embeddings\n"+
		"(hashed bag of words), /healthz; README \"OpenAI compatibility\"). They are not real models: each\n"+
		"answers a multiple-choice item by a fixed policy, so demos and tests hit a real HTTP model server.\n"+
		"Policies: random (seeded), first, oracle (reads the answer key), overlap (most words shared with the\n"+
		"context). Model names are baseline-<policy>.\n"+
		"With --task FILE|NAME (an lm-eval task file or a preset: crucible task list) they answer that task instead: oracle (the targets), first,\n"+
		"random (seeded by item), each recognising an item by the end of the prompt; with --responses FILE,\n"+
		"replay answers the response of the longest {match, response} line whose match the prompt contains\n"+
		"(a 404 when none does).\n"+
		"With --artifact DIR it serves the one policy DIR/crucible-policy.json names, as a launcher runs a\n"+
		"submitted model: {\"policy\": \"oracle\", \"dataset\": \"key.jsonl\", \"name\": \"my-model\"}, or \"task\" and\n"+
		"\"data\" (and \"responses\") for the task policies; files are relative to DIR and may not leave it.",
		"crucible model-server --listen 127.0.0.1:8000 --policy oracle,random --answers internal/app/demodata/siqa-sample.jsonl\n"+
			"  crucible model-server --task gsm8k --policy oracle,first,replay --responses answers.jsonl\n"+
			"  crucible model-server --artifact ./my-model --listen 127.0.0.1:8001 --name my-model", stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "HTTP address")
	policy := fs.String("policy", "random,first,oracle,overlap", "comma-separated policies to serve: random, first, oracle, overlap (multiple choice);\n"+
		"persona, persona-plus, persona-ref, persona-incoherent (roleplay characters), judge, judge-garbage (roleplay judges)")
	key := fs.String("answers", "", "dataset `FILE` with the answers (JSONL, as for competitions)")
	taskFile := fs.String("task", "", "an lm-eval task file or preset name: serve its baseline policies (oracle, first, random, replay;\n"+
		"default oracle,first,random) instead of the multiple-choice ones")
	data := fs.String("data", "", "with --task: the rows of the evaluation split (JSONL, CSV or Parquet), replacing the task's")
	responses := fs.String("responses", "", "the replay policy's answers: JSONL lines {\"match\": ..., \"response\": ...}")
	delay := fs.Duration("delay", 0, "wait this long before each answer (simulates a slow model)")
	artifact := fs.String("artifact", "", "serve the artifact directory's crucible-policy.json instead of the flags above")
	name := fs.String("name", "", "with --artifact: the served model name (default: the policy file's name, else baseline-<policy>)")
	// --key was this flag's name before --key meant the signing key
	// everywhere; scripts still use it.
	addAlias(fs, "key", "answers", stderr)
	// Not parse(): CRUCIBLE_KEY names a signing key file, not this dataset.
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *artifact != "" {
		var other []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "artifact" && f.Name != "name" && f.Name != "listen" && f.Name != "delay" {
				other = append(other, "--"+f.Name)
			}
		})
		if len(other) > 0 {
			return usagef("--artifact reads the policy from the directory's %s: drop %s", app.ArtifactPolicyFile, strings.Join(other, ", "))
		}
		policies, err := app.ArtifactPolicies(*artifact, *name)
		if err != nil {
			return err
		}
		return serveBaseline(ctx, *listen, *artifact, baseline.Config{Policies: policies, Delay: *delay})
	}
	if *name != "" {
		return usagef("--name needs --artifact")
	}
	if *data != "" && *taskFile == "" {
		return usagef("--data needs --task")
	}
	if *taskFile != "" || *responses != "" {
		if *key != "" {
			return usagef("--answers is for the multiple-choice policies; --task and --responses serve the task ones")
		}
		// The multiple-choice default names policies a task lacks (overlap):
		// without --policy, serve what the inputs given allow.
		names := *policy
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "policy" })
		if !given {
			var def []string
			if *taskFile != "" {
				def = []string{"oracle", "first", "random"}
			}
			if *responses != "" {
				def = append(def, "replay")
			}
			names = strings.Join(def, ",")
		}
		policies, err := app.TaskBaselinePolicies(strings.Split(names, ","),
			app.TaskBaseline{TaskFile: *taskFile, DataFile: *data, ResponsesFile: *responses})
		if err != nil {
			return err
		}
		return serveBaseline(ctx, *listen, names, baseline.Config{Policies: policies, Delay: *delay})
	}
	var ds *mcq.Dataset
	if *key != "" {
		var err error
		if ds, err = mcq.ParseFile(*key); err != nil {
			return err
		}
	} else if strings.Contains(*policy, "oracle") {
		return usagef("--answers DATASET is required by the oracle policy: it answers from that dataset's key")
	}
	policies, err := app.BaselinePolicies(strings.Split(*policy, ","), ds)
	if err != nil {
		return err
	}
	return serveBaseline(ctx, *listen, *policy, baseline.Config{Policies: policies, Delay: *delay})
}

// serveBaseline serves the baseline models until ctx ends.
func serveBaseline(ctx context.Context, listen, names string, cfg baseline.Config) error {
	srv := &http.Server{Addr: listen, Handler: baseline.New(cfg), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	slog.Info("baseline model server listening", "addr", listen, "policies", names)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// cliKinds is the registry of the kinds this binary runs, for the questions
// that reach no model (which kinds exist, their entry shape, their rules).
func cliKinds() *kind.Registry {
	reg, err := app.Kinds(kinds.Egress{}, nil)
	if err != nil {
		panic(err) // the built-in kinds have distinct names
	}
	return reg
}
