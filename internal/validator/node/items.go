package node

import (
	"context"
	"encoding/json"
	"fmt"

	"crucible/internal/competition"
	"crucible/internal/eval"
)

// renderItems renders c's items from its stored configuration and the
// validator's own rows (kind.ValidateOwnItems) and checks them against c's
// dataset digest: the validator evaluates what it rendered, never the
// hub's stored items. An error says why it cannot.
func (n *Node) renderItems(ctx context.Context, c competition.Competition) ([]json.RawMessage, error) {
	p, err := n.kinds.Render(ctx, c, n.cfg.Rows)
	if err != nil {
		return nil, err
	}
	if p.DatasetDigest != c.DatasetDigest {
		rows := "the rows its configuration brings"
		if n.cfg.Rows != nil {
			rows = "your rows (--rows)"
		}
		return nil, fmt.Errorf("the items rendered from competition %s's configuration and %s have digest %s, "+
			"the competition's are %s: not the same items (give your own copy of the rows it was created from, --rows)",
			c.ID, rows, p.DatasetDigest, c.DatasetDigest)
	}
	return p.Items, nil
}

// evaluateOwnItems runs the kind's evaluator on the validator's own items
// against the miner's model, reached through the registry's egress
// (Config.ModelHTTP).
func (n *Node) evaluateOwnItems(ctx context.Context, c competition.Competition, s competition.Submission) ([]eval.Result, error) {
	n.mu.Lock()
	items := n.ownItems
	n.mu.Unlock()
	ev, err := n.kinds.Plan(ctx, c, s, "", items)
	if err != nil {
		return nil, err
	}
	return n.run(ctx, ev)
}
