package kinds

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"crucible/internal/competition"
)

// TestOnlyArtifactSubmissionsReachLaunchedServers: the client that may
// reach loopback (where the worker launches artifact models) carries only
// artifact submissions, whose base URL the worker sets; an endpoint
// submission naming a loopback URL gets the strict client.
func TestOnlyArtifactSubmissionsReachLaunchedServers(t *testing.T) {
	strict, launched := &http.Client{}, &http.Client{}
	e := Egress{HTTPClient: strict, Launched: launched}
	endpoint := competition.Submission{Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:8000/v1", Model: "m"}}
	if e.ModelClient(endpoint) != strict {
		t.Error("an endpoint submission got the launched servers' client")
	}
	art := endpoint
	art.Artifact = &competition.ArtifactSpec{TreeDigest: "d"}
	if e.ModelClient(art) != launched {
		t.Error("an artifact submission did not get the launched servers' client")
	}
	if (Egress{HTTPClient: strict}).ModelClient(art) != strict {
		t.Error("without launched servers an artifact submission must get the strict client")
	}
}

// TestModelCheckSaysThePolicyRefusedALoopbackServer: a model server that
// answers on loopback, checked through the strict policy, fails with the
// policy as the cause and the flag that changes it, never "does not answer".
func TestModelCheckSaysThePolicyRefusedALoopbackServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[{"id":"m","object":"model"}]}`)
	}))
	defer srv.Close()
	s := competition.Submission{Model: competition.ModelSpec{BaseURL: srv.URL + "/v1", Model: "m"}}
	err := ModelCheck(context.Background(), s, "", Egress{})
	if err == nil {
		t.Fatal("the strict policy let the check reach loopback")
	}
	msg := err.Error()
	for _, want := range []string{"egress policy refused", "--allow-endpoints", "loopback"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "does not answer") {
		t.Errorf("error %q blames the model server, which answers", msg)
	}
	if err := ModelCheck(context.Background(), s, "", Egress{HTTPClient: srv.Client()}); err != nil {
		t.Errorf("an allowed client must pass the check: %v", err)
	}
}
