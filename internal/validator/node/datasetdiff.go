package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
)

// maxDiffIDs bounds the item ids a dataset mismatch names.
const maxDiffIDs = 20

// datasetDiff says which items of the validator's own dataset are not the
// competition's, for the refusal of a dataset whose digest differs. The hub
// never publishes an mcq competition's items (their answers are sealed),
// but it publishes the prompt each item was sent as: an item of ours
// whose prompt is not the hub's at the same position is not the hub's
// item. Answers are in no prompt, so a difference in answers alone shows in
// the digest only, and the text says so.
func (n *Node) datasetDiff(ctx context.Context, c competition.Competition) string {
	own := n.cfg.Dataset.Items
	var count string
	if len(own) != c.Items {
		count = fmt.Sprintf("your copy has %d items, the competition %d; ", len(own), c.Items)
	}
	var mc competition.MCQConfig
	if err := json.Unmarshal(c.Config, &mc); err != nil {
		return count + "its configuration does not parse to compare the items"
	}
	tmpl := mcq.MustDefaultTemplate()
	if mc.Template != "" {
		var err error
		if tmpl, err = mcq.ParseTemplate(mc.Template); err != nil {
			return count + "its template does not parse to compare the items"
		}
	}
	hub, err := n.hubPrompts(ctx, c)
	if err != nil {
		return count + fmt.Sprintf("the hub's prompts could not be read to compare the items: %v", err)
	}
	var differ []string
	compared := 0
	for i, it := range own {
		want, ok := hub[i]
		if !ok {
			continue
		}
		compared++
		if got, err := mcq.Render(tmpl, it); err != nil || got != want {
			differ = append(differ, it.ID)
		}
	}
	switch {
	case compared == 0:
		return count + "no submission's results show the hub's prompts yet, so the items cannot be compared"
	case len(differ) == 0:
		return count + fmt.Sprintf("the %d items compared have the hub's prompts: they differ in their answers or ids", compared)
	}
	total, more := len(differ), ""
	if total > maxDiffIDs {
		more = fmt.Sprintf(" and %d more", total-maxDiffIDs)
		differ = differ[:maxDiffIDs]
	}
	return count + fmt.Sprintf("%d of the %d items compared differ from the hub's: %s%s", total, compared, strings.Join(differ, ", "), more)
}

// hubPrompts reads the prompt the hub sent for each item position, from
// the results of c's submissions, until every position has one.
func (n *Node) hubPrompts(ctx context.Context, c competition.Competition) (map[int]string, error) {
	subs, err := n.cfg.Hub.Submissions(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	prompts := map[int]string{}
	for _, s := range subs {
		if len(prompts) >= c.Items {
			break
		}
		results, err := n.fetch(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, r := range results {
			if r.Prompt != "" && r.Index >= 0 && r.Index < c.Items {
				prompts[r.Index] = r.Prompt
			}
		}
	}
	return prompts, nil
}
