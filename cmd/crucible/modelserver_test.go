package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"crucible/internal/eval/task"
	"crucible/internal/inference"
)

// TestModelServerAnswersATaskOverHTTP starts `crucible model-server --task`
// in-process and scores Social IQa's log-likelihood requests through it:
// oracle picks every gold choice; replay answers its recorded match and
// 404s the rest.
func TestModelServerAnswersATaskOverHTTP(t *testing.T) {
	addr := startModelServer(t, "--task", "../../internal/eval/task/testdata/social_iqa.yaml",
		"--policy", "oracle,replay", "--responses", "../../internal/eval/task/tasktest/testdata/gsm8k_responses.jsonl")
	cl, err := inference.New(inference.Config{BaseURL: "http://" + addr + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := cl.Models(context.Background())
	if err != nil || len(list.Data) != 2 || list.Data[0].ID != "baseline-oracle" || list.Data[1].ID != "baseline-replay" {
		t.Fatalf("models %+v, %v", list, err)
	}

	c, err := task.Load("../../internal/eval/task/testdata/social_iqa.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadData("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.Items(d, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		var lls []task.LL
		for _, r := range it.Requests {
			resp, err := cl.Completion(context.Background(), r.LLRequest("baseline-oracle"))
			if err != nil {
				t.Fatal(err)
			}
			ll, err := task.ContinuationLL(r.Prompt, *resp)
			if err != nil {
				t.Fatal(err)
			}
			lls = append(lls, ll)
		}
		s, err := c.ScoreLL(it, lls)
		if err != nil {
			t.Fatal(err)
		}
		if s["acc,none"] != 1 || s["acc_norm,none"] != 1 {
			t.Errorf("item %d: oracle scores %v", it.Index, s)
		}
	}

	chat := func(content string) (string, error) {
		resp, err := cl.Chat(context.Background(), inference.ChatRequest{Model: "baseline-replay",
			Messages: []inference.ChatMessage{{Role: "user", Content: content}}})
		if err != nil {
			return "", err
		}
		return resp.Choices[0].Message.Content, nil
	}
	if got, err := chat("Question: A robe takes 2 bolts of blue fiber?\nAnswer:"); err != nil || !strings.HasSuffix(got, "The answer is 3.") {
		t.Fatalf("replay = %q, %v", got, err)
	}
	_, err = chat(items[0].Prompt)
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("replay of an unrecorded prompt: %v, want a 404", err)
	}
}

func TestModelServerRefusesMixedTaskFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--task", "t.yaml", "--key", "k.jsonl"}, "--key is deprecated; use --answers instead"},
		{[]string{"--task", "t.yaml", "--key", "k.jsonl"}, "--answers is for the multiple-choice policies"},
		{[]string{"--data", "d.jsonl"}, "--data needs --task"},
		{[]string{"--responses", "r.jsonl", "--policy", "oracle"}, "no such file"},
	} {
		_, stderr, code := crucible(t, append([]string{"model-server", "--listen", "127.0.0.1:0"}, tt.args...)...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, stderr, tt.want)
		}
	}
}
