package client

import (
	"context"
	"crucible/internal/api/apiv1"
	"fmt"
	"net/http"
	"net/url"
)

// RoleplayEpochs lists a roleplay competition's fresh-item epochs, latest
// first: commitments, and the seeds and digests of ended epochs.
func (c *Client) RoleplayEpochs(ctx context.Context, competitionID string) ([]apiv1.RoleplayEpoch, error) {
	var out []apiv1.RoleplayEpoch
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/roleplay-epochs", nil, &out)
}

// RoleplayEpoch returns one fresh-item epoch; its items and results once it has ended.
func (c *Client) RoleplayEpoch(ctx context.Context, competitionID string, n int64) (apiv1.RoleplayEpoch, error) {
	var out apiv1.RoleplayEpoch
	return out, c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/competitions/%s/roleplay-epochs/%d", url.PathEscape(competitionID), n), nil, &out)
}

// Contamination returns a roleplay competition's contamination check.
func (c *Client) Contamination(ctx context.Context, competitionID string) ([]apiv1.Contamination, error) {
	var out []apiv1.Contamination
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/contamination", nil, &out)
}
