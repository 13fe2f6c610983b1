package kinds

import (
	"fmt"
	"net/http"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/egress"
	"crucible/internal/inference"
)

// Role names one of a competition's own models, which the server calls on
// the competition's behalf.
type Role string

// The roles of a competition's own models.
const (
	RoleGenerator Role = "generator"
	RoleReference Role = "reference"
	RoleJudge     Role = "judge"
)

// OperatorEndpoint is a model server the operator configured (crucible
// serve --generator-url, --reference-url, --judge-url) with the API key that
// only it ever receives.
type OperatorEndpoint struct {
	BaseURL string
	APIKey  string
}

// Egress is how the server reaches the models of competitions: their own
// generator, reference and judge, and submitted models. A competition
// creator picks the operator's endpoint for a role by leaving its base_url
// empty or by naming an operator endpoint's URL; only then is the
// operator's key sent. Any other URL is the creator's own and gets no key.
// Every request, to either, goes through HTTPClient, so the creator's URLs
// meet the same dial-time address policy as submitted model servers.
type Egress struct {
	// Operator are the operator's endpoints by role.
	Operator map[Role]OperatorEndpoint
	// HTTPClient carries every request; nil means a client with the strict
	// policy (egress.NewSafeHTTPClient with no allowed prefixes).
	HTTPClient *http.Client
	// Launched reaches the model servers this worker launched on loopback
	// for artifact submissions; it is used only for a submission with an
	// Artifact, whose base URL the worker set to its lease's (an artifact
	// submission stores none). nil: such a submission gets Client, whose
	// policy refuses loopback unless the operator allowed it.
	Launched *http.Client
}

// ModelClient returns the HTTP client for submission s's model: Launched
// for an artifact submission (see Launched), Client for any other.
func (e Egress) ModelClient(s competition.Submission) *http.Client {
	if s.Artifact != nil && e.Launched != nil {
		return e.Launched
	}
	return e.Client()
}

// Client returns the HTTP client of every outbound request.
func (e Egress) Client() *http.Client {
	if e.HTTPClient == nil {
		return egress.NewSafeHTTPClient(egress.EndpointPolicy{}, egress.Timeouts{})
	}
	return e.HTTPClient
}

// Model returns a client for the role's model at baseURL: the operator's
// endpoint (with its key) when baseURL is empty or names one, otherwise
// baseURL without any key.
func (e Egress) Model(role Role, baseURL string) (*inference.Client, error) {
	cfg := inference.Config{BaseURL: baseURL, HTTPClient: e.Client()}
	if strings.TrimSpace(baseURL) == "" {
		op, ok := e.Operator[role]
		if !ok || op.BaseURL == "" {
			return nil, fmt.Errorf("%s: base_url is empty and this server has no %s model of its own (the operator sets one with crucible serve --%s-url)", role, role, role)
		}
		cfg.BaseURL, cfg.APIKey = op.BaseURL, op.APIKey
	} else if op, ok := e.operatorAt(role, baseURL); ok {
		cfg.APIKey = op.APIKey
	}
	return inference.New(cfg)
}

// operatorAt returns the operator endpoint whose URL is baseURL (both
// normalized), if any, preferring the role's own (whose key it is).
func (e Egress) operatorAt(role Role, baseURL string) (OperatorEndpoint, bool) {
	want, err := inference.NormalizeBaseURL(baseURL)
	if err != nil {
		return OperatorEndpoint{}, false
	}
	for _, r := range []Role{role, RoleGenerator, RoleReference, RoleJudge} {
		op, ok := e.Operator[r]
		if !ok || op.BaseURL == "" {
			continue
		}
		if got, err := inference.NormalizeBaseURL(op.BaseURL); err == nil && got == want {
			return op, true
		}
	}
	return OperatorEndpoint{}, false
}
