package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/identity"
	"crucible/internal/kind"
)

type clientFlags struct {
	server, key *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		server: fs.String("server", "http://127.0.0.1:8080", "Crucible server URL"),
		key:    fs.String("key", "", "key file that signs state-changing requests (crucible keys new)"),
	}
}

func (c clientFlags) client(needKey bool) (*client.Client, error) {
	cfg := client.Config{Server: *c.server}
	if *c.key != "" {
		k, err := identity.Load(*c.key)
		if err != nil {
			return nil, err
		}
		cfg.Key = k
	} else if needKey {
		return nil, usagef("--key KEYFILE is required to sign this request (make one with `crucible keys new --out KEYFILE`)")
	}
	return client.New(cfg)
}

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "keys",
		verb{"new", "make a signing key file"},
		verb{"contributor", "contributor keys for your miner's labellers (new|list|revoke)"})
	if err != nil {
		return err
	}
	if verb == "contributor" {
		return runContributorKeys(ctx, args, stdout, stderr)
	}
	fs := newFlags("keys new", "Make an ed25519 key pair for signing requests. The file holds the private key: keep it 0600.",
		"crucible keys new --out ~/.config/crucible/me.key", stderr)
	out := fs.String("out", "", "where to write the key file (refuses to overwrite)")
	o := addOutputFlags(fs, "print the key id as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out KEYFILE is required")
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
		return err
	}
	k, err := identity.NewKey()
	if err != nil {
		return err
	}
	if err := k.Save(*out); err != nil {
		return err
	}
	return o.emit(stdout, map[string]string{"key_id": k.ID(), "file": *out}, func() error {
		fmt.Fprintf(stdout, "wrote %s\nkey id: %s\n", *out, k.ID())
		return nil
	})
}

func runCompetition(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "competition",
		verb{"create", "create a competition from a dataset (kinds: crucible competition create --help)"},
		verb{"list", "list competitions"},
		verb{"show", "show one competition and its configuration"})
	if err != nil {
		return err
	}
	switch verb {
	case "create":
		// Labeling competitions have their own flags.
		if cliKinds().Labeled(competition.Kind(kindFlag(args))) {
			return runPreferenceCreate(ctx, args, stdout, stderr)
		}
		fs := newFlags("competition create", "Create a competition from a dataset. The dataset is validated line by line; a bad line\n"+
			"is reported with its number and nothing is created.",
			`crucible competition create --kind mcq --dataset internal/app/demodata/siqa-sample.jsonl --title "Social IQa" --key me.key`, stderr)
		cf := addClientFlags(fs)
		reg := cliKinds()
		kindName := fs.String("kind", "mcq", "task kind: "+strings.Join(reg.Names(), ", "))
		dataset := fs.String("dataset", "", "mcq: dataset file (JSONL: Social IQa shape or {question, choices, answer})")
		title := fs.String("title", "", "title shown on leaderboards")
		template := fs.String("template", "", "prompt template file (Go text/template over .Context, .Question, .Choices)")
		mode := fs.String("mode", "generative", "mcq scoring: generative (chat, answer extracted) or loglik (completions logprobs)")
		o := addOutputFlags(fs, "print the competition as JSON")
		serverRepos := fs.Bool("server-repos", false, "patch: the tasks' repo paths are on the server, beneath its --repos roots (operator keys only);\n"+
			"by default each task's local repository is uploaded as a git bundle")
		entries := kinds.AddEntryFlags(fs)
		kindFlags := reg.CreateFlags(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		k, err := reg.Parse(*kindName)
		if err != nil {
			return usagef("%v", err)
		}
		if entries() != nil && reg.Entry(k) != kind.EntryModel {
			return usagef("--submissions, --max-parameters and --max-artifact-bytes apply to model competitions (task, mcq, roleplay), not %s", k)
		}
		cr, err := kindFlags(k)
		if err != nil {
			return err
		}
		req, err := competitionRequest(k, *title, *dataset, cr)
		if err != nil {
			return err
		}
		req.Mode, req.Entries = *mode, entries()
		if reg.Entry(k) == kind.EntryPatch && !*serverRepos {
			if req.Repos, err = bundleRepos(ctx, []byte(req.Dataset)); err != nil {
				return err
			}
		}
		if *template != "" {
			t, err := os.ReadFile(*template)
			if err != nil {
				return err
			}
			req.Template = string(t)
		}
		c, err := cf.client(true)
		if err != nil {
			return err
		}
		comp, err := c.CreateCompetition(ctx, req)
		if err != nil {
			return err
		}
		return o.emit(stdout, comp, func() error {
			if cr.Created != nil {
				_, err := fmt.Fprintln(stdout, cr.Created(comp))
				return err
			}
			_, err := fmt.Fprintf(stdout, "created competition %s (%s, %d items, dataset %s)\n", comp.ID, comp.Kind, comp.Items, comp.DatasetName)
			return err
		})
	case "list":
		return runList(ctx, args, stdout, stderr, "competition list", "List competitions, newest first.",
			(*client.Client).Competitions, "ID\tKIND\tITEMS\tCREATED\tTITLE", func(c competition.Competition) string {
				return fmt.Sprintf("%s\t%s\t%d\t%s\t%s", c.ID, c.Kind, c.Items, c.CreatedAt.Format(time.RFC3339), c.Title)
			})
	default:
		return runShow(ctx, args, stdout, stderr, showSpec{name: "competition show", idFlag: "competition",
			summary: "Show one competition: its kind, dataset and scoring configuration.",
			example: "crucible competition show --competition c-abc123"},
			func(c *client.Client, id string) (competition.Competition, error) { return c.Competition(ctx, id) },
			printCompetition)
	}
}

// printCompetition prints a competition and its scoring rules: the
// configuration as indented JSON, or a preference competition's rules in words.
func printCompetition(w io.Writer, comp competition.Competition) error {
	fmt.Fprintf(w, "id:       %s\ntitle:    %s\nkind:     %s\ndataset:  %s (%d items, sha256 %s)\ncreated:  %s by %s\n",
		comp.ID, comp.Title, comp.Kind, comp.DatasetName, comp.Items, comp.DatasetDigest, comp.CreatedAt.Format(time.RFC3339), comp.CreatedBy)
	if text, ok, err := cliKinds().Tell(comp); ok || err != nil {
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "\n%s", text)
		return err
	}
	var config bytes.Buffer
	if err := json.Indent(&config, durationsInWords(comp.Config), "          ", "  "); err != nil {
		config.Write(comp.Config)
	}
	_, err := fmt.Fprintf(w, "config:   %s\n", config.String())
	return err
}

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "submit",
		verb{"model", "submit an OpenAI-compatible model server"},
		verb{"patch", "submit a patch (unified diff) for a code-fix task"},
		verb{"predictions", "submit a predictions file to a predictions competition"},
		verb{"artifact", "submit model files to an artifacts competition"})
	if err != nil {
		return err
	}
	var fs *flag.FlagSet
	var cf clientFlags
	var comp, name *string
	var o output
	common := func(summary, example string) {
		fs = newFlags("submit "+verb, summary, example, stderr)
		cf = addClientFlags(fs)
		comp = fs.String("competition", "", "competition id")
		name = fs.String("name", "", "display name")
		o = addOutputFlags(fs, "print the submission as JSON")
	}
	var req apiv1.CreateSubmissionRequest
	if verb == "model" {
		common("Submit a model: anything speaking the OpenAI HTTP API (vLLM, llama.cpp server, Ollama, TGI).\n"+
			"The submission records a digest of what was committed and the time of commit.",
			"crucible submit model --competition c-abc123 --base-url http://127.0.0.1:8000/v1 --model my-model --key me.key")
		baseURL := fs.String("base-url", "", "the model server's OpenAI base URL, e.g. http://host:8000/v1 (without /v1 is accepted)")
		model := fs.String("model", "", "model name as the server lists it in /v1/models")
		keyEnv := fs.String("api-key-env", "", "environment variable holding the model server's API key (sent as a bearer token)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *comp == "" || *baseURL == "" || *model == "" {
			return usagef("--competition, --base-url and --model are required")
		}
		req = apiv1.CreateSubmissionRequest{Name: *name, BaseURL: *baseURL, Model: *model}
		if *keyEnv != "" {
			v, ok := os.LookupEnv(*keyEnv)
			if !ok || v == "" {
				return usagef("--api-key-env %s: that environment variable is not set", *keyEnv)
			}
			req.APIKey = v
		}
	} else if verb == "artifact" {
		common(artifactSubmitSummary, artifactSubmitExample)
		if req, err = artifactRequest(fs, args, comp); err != nil {
			return err
		}
		req.Name = *name
	} else if verb == "predictions" {
		common("Submit a predictions file to a task competition created with --submissions predictions: JSONL\n"+
			"lines {\"doc_id\": N, \"response\": \"...\"}, doc_id the item's index from 0 and response the raw text,\n"+
			"cut and filtered like a live answer. A doc without a line scores 0. The hub checks the file when it is\n"+
			"submitted; the score appears on the leaderboard, never per-item results or targets. Try it locally\n"+
			"first: crucible eval --task FILE --data ROWS --predictions preds.jsonl",
			"crucible submit predictions --competition c-abc123 --file preds.jsonl --key me.key")
		file := fs.String("file", "", "the predictions file (JSONL, at most 6 MiB)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *comp == "" || *file == "" {
			return usagef("--competition and --file are required")
		}
		body, err := readBounded(*file, predictionsFileBytes)
		if err != nil {
			return err
		}
		req = apiv1.CreateSubmissionRequest{Name: *name, Predictions: string(body)}
	} else {
		common("Submit a patch (a unified diff against the task's base commit) for one task of a code-fix\n"+
			"competition. It is judged in a sandbox: applied, tests restored, FAIL_TO_PASS and PASS_TO_PASS run.",
			"crucible submit patch --competition c-abc123 --task repo__issue-1 --file fix.diff --key me.key")
		task := fs.String("task", "", "the task's instance_id")
		file := fs.String("file", "", "the patch file (unified diff)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *comp == "" || *task == "" || *file == "" {
			return usagef("--competition, --task and --file are required")
		}
		diff, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		req = apiv1.CreateSubmissionRequest{Name: *name, Task: *task, Patch: string(diff)}
	}
	c, err := cf.client(true)
	if err != nil {
		return err
	}
	sub, err := c.Submit(ctx, *comp, req)
	if err != nil {
		return err
	}
	return o.emit(stdout, sub, func() error {
		fmt.Fprintf(stdout, "submitted %s as %s (digest %s, committed %s); follow it with: crucible status --competition %s\n",
			sub.Name, sub.ID, sub.Digest[:16], sub.CommittedAt.Format(time.RFC3339), *comp)
		return nil
	})
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "Show each submission's state (queued, running, scored, failed, infra_failed) and progress.",
		"crucible status --competition c-abc123 --watch", stderr)
	cf := addClientFlags(fs)
	comp := fs.String("competition", "", "competition id")
	watch := fs.Bool("watch", false, "refresh until every submission is final")
	o := addOutputFlags(fs, "print JSON")
	c, err := parseWithID(fs, args, cf, "competition", comp, false)
	if err != nil {
		return err
	}
	tty := isTerminal(stdout)
	if *watch && !o.isJSON() {
		scr, rates := newScreen(stdout), &progressRates{}
		_, err := c.WaitScored(ctx, *comp, time.Second, func(subs []competition.Submission) {
			var b strings.Builder
			printStatus(&b, subs, tty, rates.observe(time.Now(), subs))
			if tty {
				scr.draw(b.String())
			} else {
				fmt.Fprint(stdout, b.String())
			}
		})
		return err
	}
	subs, err := c.Submissions(ctx, *comp)
	if err != nil {
		return err
	}
	return o.emit(stdout, subs, func() error {
		printStatus(stdout, subs, tty, nil)
		return nil
	})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printStatus prints the status table; rates (from progressRates) follow
// the progress of the submissions they name.
func printStatus(w io.Writer, subs []competition.Submission, bar bool, rates map[string]string) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBMISSION\tNAME\tSTATE\tPROGRESS\tSCORE\tREASON")
	for _, s := range subs {
		progress := fmt.Sprintf("%d/%d", s.ItemsDone, s.ItemsTotal)
		if bar {
			progress = progressBar(s.ItemsDone, s.ItemsTotal, 20) + " " + progress
		}
		if r := rates[s.ID]; r != "" {
			progress += " " + r
		}
		score := "-"
		if s.Card != nil {
			score = fmt.Sprintf("%.4f", s.Card.Score)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Name, s.State, progress, score, s.Reason)
	}
	tw.Flush()
	fmt.Fprint(w, b.String())
}

func progressBar(done, total, width int) string {
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
}

func runLeaderboard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runShow(ctx, args, stdout, stderr, showSpec{name: "leaderboard", idFlag: "competition",
		summary: "Show a competition's leaderboard: score, 95% bootstrap interval and items evaluated.\n" +
			"Rows whose interval overlaps the leader's are marked as ties (=).",
		example:  "crucible leaderboard --competition c-abc123 --json",
		jsonHelp: "print JSON (an array of rows with name, score, ci_low, ci_high, items, tie)"},
		func(c *client.Client, id string) ([]competition.Row, error) { return c.Leaderboard(ctx, id) },
		func(w io.Writer, rows []competition.Row) error { printLeaderboard(w, rows); return nil })
}

// printLeaderboard prints ranked rows; a code-fix competition's rows (one
// per submitter) show the share of tasks resolved and the mean score.
func printLeaderboard(w io.Writer, rows []competition.Row) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	perSubmitter := len(rows) > 0 && rows[0].ResolvedRate != nil
	if perSubmitter {
		fmt.Fprintln(tw, "RANK\tSUBMITTER\tRESOLVED\tMEAN SCORE\t95% CI\tTIE")
	} else {
		fmt.Fprintln(tw, "RANK\tNAME\tSCORE\t95% CI\tITEMS\tTIE")
	}
	for _, r := range rows {
		tie := ""
		if r.Tie {
			tie = "="
		}
		if perSubmitter && r.ResolvedRate != nil {
			fmt.Fprintf(tw, "%d\t%s\t%.1f%% (%d/%d)\t%.4f\t[%.4f, %.4f]\t%s\n", r.Rank, r.Name, 100**r.ResolvedRate, r.Correct, r.Items, r.Score, r.CILow, r.CIHigh, tie)
			continue
		}
		if r.CopyOf != "" { // ranks but earns nothing
			tie += "\tcopy of " + r.CopyOf
		}
		fmt.Fprintf(tw, "%d\t%s\t%.4f\t[%.4f, %.4f]\t%d\t%s\n", r.Rank, r.Name, r.Score, r.CILow, r.CIHigh, r.Items, tie)
	}
	tw.Flush()
}

func runResults(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var offset, limit *int
	return runShow(ctx, args, stdout, stderr, showSpec{name: "results", idFlag: "submission",
		summary: "Show a submission's per-item results: prompt, raw response, parsed prediction, correctness.",
		example: "crucible results --submission s-abc123 --offset 0 --limit 20",
		flags: func(fs *flag.FlagSet) {
			offset = fs.Int("offset", 0, "first item")
			limit = fs.Int("limit", 20, "items per page (1..1000)")
		}},
		func(c *client.Client, id string) (apiv1.ResultsPage, error) {
			return c.Results(ctx, id, *offset, *limit)
		},
		func(w io.Writer, page apiv1.ResultsPage) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ITEM\tCORRECT\tPREDICTION\tLATENCY\tRESPONSE")
			for _, r := range page.Results {
				resp := strings.ReplaceAll(r.Response, "\n", " ")
				if len(resp) > 60 {
					resp = resp[:60] + "…"
				}
				fmt.Fprintf(tw, "%d\t%v\t%s\t%dms\t%s\n", r.Index, r.Correct, r.Prediction, r.LatencyMS, resp)
			}
			return tw.Flush()
		})
}

// competitionRequest is the request to create a competition of kind k
// titled title from its dataset file (the kind's own flag's, else
// --dataset) and the kind's settings.
func competitionRequest(k competition.Kind, title, dataset string, cr kind.Creation) (apiv1.CreateCompetitionRequest, error) {
	if cr.Dataset != "" {
		dataset = cr.Dataset
	}
	switch {
	case cr.Shipped && title == "":
		return apiv1.CreateCompetitionRequest{}, usagef("--title is required")
	case !cr.Shipped && (dataset == "" || title == ""):
		return apiv1.CreateCompetitionRequest{}, usagef("--dataset FILE (mcq) or --tasks FILE (patch), and --title T, are required")
	}
	req := apiv1.CreateCompetitionRequest{Kind: string(k), Title: title, DatasetName: cr.DatasetName}
	if dataset != "" {
		data := cr.Data
		if data == nil {
			var err error
			if data, err = os.ReadFile(dataset); err != nil {
				return req, err
			}
		}
		req.Dataset = string(data)
		if req.DatasetName == "" {
			req.DatasetName = strings.TrimSuffix(filepath.Base(dataset), filepath.Ext(dataset))
		}
	}
	// A kind's options are fields of the request by their JSON names.
	opts, err := json.Marshal(cr.Options)
	if err != nil {
		return req, err
	}
	return req, json.Unmarshal(opts, &req)
}

// showSpec describes a command that shows one object.
type showSpec struct {
	name, summary, example string
	// idFlag names the object's id flag ("competition", "pool", ...).
	idFlag  string
	needKey bool
	// jsonHelp overrides the --json flag's help.
	jsonHelp string
	// flags adds the command's own flags; fetch reads them after parsing.
	flags func(fs *flag.FlagSet)
}

// runShow runs a command about one object: client flags, the id flag,
// --json and the command's own flags; one fetch; then JSON or text.
func runShow[T any](ctx context.Context, args []string, stdout, stderr io.Writer, spec showSpec,
	fetch func(c *client.Client, id string) (T, error), text func(w io.Writer, v T) error) error {
	fs := newFlags(spec.name, spec.summary, spec.example, stderr)
	cf := addClientFlags(fs)
	id := fs.String(spec.idFlag, "", spec.idFlag+" id")
	jsonHelp := spec.jsonHelp
	if jsonHelp == "" {
		jsonHelp = "print JSON"
	}
	o := addOutputFlags(fs, jsonHelp)
	if spec.flags != nil {
		spec.flags(fs)
	}
	c, err := parseWithID(fs, args, cf, spec.idFlag, id, spec.needKey)
	if err != nil {
		return err
	}
	v, err := fetch(c, *id)
	if err != nil {
		return err
	}
	return o.emit(stdout, v, func() error { return text(stdout, v) })
}

// parseWithID is the common start of a command about one object: parse the
// flags, insist on the object's id flag (--name), and make a client that
// signs when needKey.
func parseWithID(fs *flag.FlagSet, args []string, cf clientFlags, name string, id *string, needKey bool) (*client.Client, error) {
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if *id == "" {
		return nil, usagef("--%s ID is required", name)
	}
	return cf.client(needKey)
}

// runList is a read-only list command: client flags and --json, one fetch,
// then JSON or a table with one row per element.
func runList[T any](ctx context.Context, args []string, stdout, stderr io.Writer, name, summary string,
	fetch func(*client.Client, context.Context) ([]T, error), header string, row func(T) string) error {
	fs := newFlags(name, summary, "crucible "+name+" --json", stderr)
	cf := addClientFlags(fs)
	o := addOutputFlags(fs, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := cf.client(false)
	if err != nil {
		return err
	}
	list, err := fetch(c, ctx)
	if err != nil {
		return err
	}
	return o.emit(stdout, list, func() error {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, v := range list {
			fmt.Fprintln(tw, row(v))
		}
		return tw.Flush()
	})
}

// predictionsFileBytes bounds a submitted predictions file: the hub's
// limit on the request's predictions field.
const predictionsFileBytes = 6 << 20

// readBounded reads a file of at most limit bytes, refusing a larger one
// before reading it.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%s: more than the %d bytes allowed", path, limit)
	}
	return data, err
}
