package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"crucible/internal/competition"
	"crucible/internal/modelhost"
)

// needModels is the validator's refusal to go on when a miner's latest
// submission is an artifact and it serves none: its weights would leave
// that miner out (or copy the hub's word on it).
func (n *Node) needModels(s competition.Submission) error {
	if s.Artifact == nil || n.cfg.Models != nil {
		return nil
	}
	return fmt.Errorf("%w: submission %s is an artifact submission (model files, not an endpoint) and this validator serves no artifacts: "+
		"start it with --model-cache DIR and --model-launcher TEMPLATE (and --model-fetcher for repositories) to fetch, verify and serve them itself",
		ErrCannotEvaluate, s.ID)
}

// serveArtifact fetches s's artifact from its source on this machine,
// verifies it against the committed tree digest, reads its facts from the
// files (the hub's stored facts are not trusted) and launches its model;
// s's model becomes the launched server. release must be called after the
// evaluation. An artifact that is not the committed tree, or exceeds the
// competition's caps, is refused for good: the submission gets no weight.
func (n *Node) serveArtifact(ctx context.Context, c competition.Competition, s *competition.Submission) (release func(), err error) {
	n.mu.Lock()
	refused := n.refused[s.ID]
	n.mu.Unlock()
	if refused != nil {
		return nil, refused
	}
	a := *s.Artifact
	a.Parameters, a.Bytes = 0, 0
	sub := *s
	sub.Artifact = &a
	lease, err := n.cfg.Models.Serve(ctx, c, sub, nil)
	if errors.As(err, new(modelhost.Refused)) {
		err = fmt.Errorf("artifact refused: %w", err)
		n.mu.Lock()
		n.refused[s.ID] = err
		n.mu.Unlock()
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("serve the artifact: %w", err)
	}
	s.Model, s.Artifact = lease.Model, &lease.Artifact
	return lease.Release, nil
}

// modelHTTP is the client that reaches s's model: the launched server on
// loopback for an artifact (its base URL set by serveArtifact), the
// miner's endpoint through ModelHTTP's policy otherwise.
func (n *Node) modelHTTP(s competition.Submission) *http.Client {
	if s.Artifact != nil {
		return n.cfg.LaunchedHTTP
	}
	return n.cfg.ModelHTTP
}
