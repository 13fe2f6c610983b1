package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"crucible/internal/competition"
)

// Submissions lists a competition's submissions with their progress,
// reading the hub's pages (at most SubmissionsPage each) until a short one.
func (c *Client) Submissions(ctx context.Context, competitionID string) ([]competition.Submission, error) {
	var out []competition.Submission
	after := ""
	for {
		var page []competition.Submission
		q := url.Values{"limit": {strconv.Itoa(SubmissionsPage)}}
		if after != "" {
			q.Set("after", after)
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/submissions?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < SubmissionsPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// SubmissionsPage is the page size Submissions asks for: the hub's largest.
const SubmissionsPage = 1000
