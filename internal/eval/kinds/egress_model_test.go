package kinds

import (
	"net/http"
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
