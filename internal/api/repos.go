package api

import (
	"context"
	"encoding/json"
	"fmt"

	"crucible/internal/competition"
	"crucible/internal/eval/patch"
	"crucible/internal/kind"
)

// isOperator reports whether key is one of the hub's --admin-key ids, the
// keys allowed to name repositories on the server.
func (s *Server) isOperator(key string) bool {
	return s.cfg.Validators != nil && s.cfg.Validators.IsAdmin(key)
}

// bundles are the verified repository bundles of one competition request.
type bundles struct {
	byName map[string]*patch.Bundle
	// used are the bundles some task refers to: the ones to store.
	used map[string]*patch.Bundle
}

// openBundles verifies the bundles uploaded with a patch competition.
func (s *Server) openBundles(ctx context.Context, k competition.Kind, repos map[string][]byte) (*bundles, error) {
	b := &bundles{byName: map[string]*patch.Bundle{}, used: map[string]*patch.Bundle{}}
	if len(repos) > 0 && s.cfg.Kinds.Entry(k) != kind.EntryPatch {
		return b, badRequest("repos are for patch competitions; this is a %s competition", k)
	}
	if len(repos) > MaxRepoBundles {
		return b, badRequest("%d repository bundles is over the limit of %d", len(repos), MaxRepoBundles)
	}
	for name, data := range repos {
		bundle, err := patch.OpenBundle(ctx, data)
		if err != nil {
			b.close()
			return b, badRequest("repos[%q]: %v", name, err)
		}
		b.byName[name] = bundle
	}
	return b, nil
}

// resolver returns the kind.Spec.ResolveRepo of a request: a task's repo
// names an uploaded bundle holding its base commit, or, for an operator
// only, a repository beneath roots.
func (b *bundles) resolver(operator bool, roots []string) func(ctx context.Context, repo, baseCommit string) (string, error) {
	return func(ctx context.Context, repo, baseCommit string) (string, error) {
		if bundle, ok := b.byName[repo]; ok {
			if err := bundle.HasCommit(ctx, baseCommit); err != nil {
				return "", fmt.Errorf("repo %q: %w", repo, err)
			}
			b.used[bundle.Digest] = bundle
			return patch.BundlePrefix + bundle.Digest, nil
		}
		if !operator {
			return "", fmt.Errorf("repo %q is not among the bundles uploaded with the competition (repos); only the operator's keys may name a repository on the server", repo)
		}
		return patch.ResolveUnder(roots, repo)
	}
}

// data returns the used bundles' contents, to store with the competition.
func (b *bundles) data() [][]byte {
	out := make([][]byte, 0, len(b.used))
	for _, bundle := range b.used {
		out = append(out, bundle.Data)
	}
	return out
}

func (b *bundles) close() {
	for _, bundle := range b.byName {
		bundle.Close()
	}
}

// kindOptions encodes a request's kind-specific settings (kind.Spec.Options),
// leaving out the absent ones.
func kindOptions(fields map[string]any) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for name, v := range fields {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if string(raw) != "null" {
			out[name] = raw
		}
	}
	return out, nil
}
