// Package client is the Go client of the Crucible REST API that the CLI
// uses: it signs state-changing requests with the caller's key and turns
// error responses into errors that carry the server's reason. Its request
// and response types are the hub's wire types (internal/api/apiv1) and the
// pure packages' (competition, ledger, the kinds'); it imports no server
// package and never opens a database.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/competition"
	"crucible/internal/eval/patch"
	"crucible/internal/identity"
	"crucible/internal/ledger"
)

// Client talks to one Crucible server.
type Client struct {
	base string
	key  *identity.Key
	http *http.Client
	now  func() time.Time

	mu  sync.Mutex
	hub string // the server's hub id, fetched before the first signature
}

// Config configures a Client.
type Config struct {
	// Server is the server's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Key signs state-changing requests; reads need none.
	Key        *identity.Key
	HTTPClient *http.Client
	// HubID is the server's hub id, which signatures name; empty fetches
	// it from GET /api/v1/hub before the first signed request.
	HubID string
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an http(s) URL like http://127.0.0.1:8080", cfg.Server)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Client{base: strings.TrimRight(cfg.Server, "/"), key: cfg.Key, http: hc, now: time.Now, hub: cfg.HubID}, nil
}

// Hub returns the server's hub id, asking the server once.
func (c *Client) Hub(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hub != "" {
		return c.hub, nil
	}
	var out apiv1.HubInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/hub", nil, &out); err != nil {
		return "", fmt.Errorf("ask the server for its hub id, which signatures name: %w", err)
	}
	if out.HubID == "" {
		return "", fmt.Errorf("the server at %s answered GET /api/v1/hub without a hub id (is it a crucible hub?)", c.base)
	}
	c.hub = out.HubID
	return c.hub, nil
}

// sign adds the signature headers of a request to the server's hub.
func (c *Client) sign(ctx context.Context, req *http.Request, path string, body []byte) error {
	hub, err := c.Hub(ctx)
	if err != nil {
		return err
	}
	headers, err := c.key.Sign(hub, req.Method, path, c.now().Unix(), body)
	if err != nil {
		return err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return nil
}

// APIError is an error response from the server.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string { return fmt.Sprintf("server said %d: %s", e.StatusCode, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if method != http.MethodGet {
		if c.key == nil {
			return fmt.Errorf("%s %s changes state and must be signed: pass --key KEYFILE (make one with `crucible keys new --out KEYFILE`)", method, path)
		}
		if err := c.sign(ctx, req, path, body); err != nil {
			return err
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach the crucible server at %s: %w (is `crucible serve` running?)", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &APIError{StatusCode: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s %s response: %w", method, path, err)
		}
	}
	return nil
}

// CreateCompetition creates a competition.
func (c *Client) CreateCompetition(ctx context.Context, req apiv1.CreateCompetitionRequest) (competition.Competition, error) {
	var out competition.Competition
	return out, c.do(ctx, http.MethodPost, "/api/v1/competitions", req, &out)
}

// Competitions lists competitions.
func (c *Client) Competitions(ctx context.Context) ([]competition.Competition, error) {
	var out []competition.Competition
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions", nil, &out)
}

// Competition returns one competition.
func (c *Client) Competition(ctx context.Context, id string) (competition.Competition, error) {
	var out competition.Competition
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(id), nil, &out)
}

// Submit submits a model to a competition.
func (c *Client) Submit(ctx context.Context, competitionID string, req apiv1.CreateSubmissionRequest) (competition.Submission, error) {
	var out competition.Submission
	return out, c.do(ctx, http.MethodPost, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/submissions", req, &out)
}

// Submission returns one submission.
func (c *Client) Submission(ctx context.Context, id string) (competition.Submission, error) {
	var out competition.Submission
	return out, c.do(ctx, http.MethodGet, "/api/v1/submissions/"+url.PathEscape(id), nil, &out)
}

// Results returns a page of a submission's per-item results.
func (c *Client) Results(ctx context.Context, id string, offset, limit int) (apiv1.ResultsPage, error) {
	var out apiv1.ResultsPage
	return out, c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/submissions/%s/results?offset=%d&limit=%d", url.PathEscape(id), offset, limit), nil, &out)
}

// Leaderboard returns a competition's leaderboard.
func (c *Client) Leaderboard(ctx context.Context, competitionID string) ([]competition.Row, error) {
	var out []competition.Row
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/leaderboard", nil, &out)
}

// Tasks lists a code-fix competition's tasks (no reference fix, no test patch).
func (c *Client) Tasks(ctx context.Context, competitionID string) ([]patch.PublicTask, error) {
	var out []patch.PublicTask
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/tasks", nil, &out)
}

// Prompts lists the prompts of a task competition that takes predictions
// files, by doc_id (no targets).
func (c *Client) Prompts(ctx context.Context, competitionID string) ([]apiv1.TaskPrompt, error) {
	var out []apiv1.TaskPrompt
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/prompts", nil, &out)
}

// TaskTree returns a task's base tree as a tar.gz of at most
// patch.MaxTreeBytes (larger answers are an error, not a cut tree).
func (c *Client) TaskTree(ctx context.Context, competitionID, task string) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/tasks/"+url.PathEscape(task)+"/tree", false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, responseError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, patch.MaxTreeBytes+1))
	if err == nil && len(b) > patch.MaxTreeBytes {
		err = fmt.Errorf("the tree of task %s is over %d bytes", task, patch.MaxTreeBytes)
	}
	return b, err
}

// WaitScored polls until every submission of a competition is final or ctx
// ends, calling progress after each poll.
func (c *Client) WaitScored(ctx context.Context, competitionID string, every time.Duration, progress func([]competition.Submission)) ([]competition.Submission, error) {
	for {
		subs, err := c.Submissions(ctx, competitionID)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(subs)
		}
		final := true
		for _, s := range subs {
			final = final && s.State.Final()
		}
		if final {
			return subs, nil
		}
		select {
		case <-ctx.Done():
			return subs, ctx.Err()
		case <-time.After(every):
		}
	}
}

// CreatePool funds a pool.
func (c *Client) CreatePool(ctx context.Context, req apiv1.CreatePoolRequest) (competition.Pool, error) {
	var out competition.Pool
	return out, c.do(ctx, http.MethodPost, "/api/v1/pools", req, &out)
}

// Pools lists pools.
func (c *Client) Pools(ctx context.Context) ([]competition.Pool, error) {
	var out []competition.Pool
	return out, c.do(ctx, http.MethodGet, "/api/v1/pools", nil, &out)
}

// Pool returns a pool's status.
func (c *Client) Pool(ctx context.Context, id string) (apiv1.PoolStatus, error) {
	var out apiv1.PoolStatus
	return out, c.do(ctx, http.MethodGet, "/api/v1/pools/"+url.PathEscape(id), nil, &out)
}

// JoinPool enters a model into a pool.
func (c *Client) JoinPool(ctx context.Context, id string, req apiv1.JoinPoolRequest) (competition.Submission, error) {
	var out competition.Submission
	return out, c.do(ctx, http.MethodPost, "/api/v1/pools/"+url.PathEscape(id)+"/entries", req, &out)
}

// PoolLeaderboard returns the snapshot in force at at (RFC 3339; "" for now).
func (c *Client) PoolLeaderboard(ctx context.Context, id, at string) (competition.Snapshot, error) {
	var out competition.Snapshot
	path := "/api/v1/pools/" + url.PathEscape(id) + "/leaderboard"
	if at != "" {
		path += "?at=" + url.QueryEscape(at)
	}
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// SettlePool settles an ended pool (once); force settles it before its
// final evaluation tick, for its funder or an operator.
func (c *Client) SettlePool(ctx context.Context, id string, force bool) (competition.Settlement, error) {
	var out competition.Settlement
	return out, c.do(ctx, http.MethodPost, "/api/v1/pools/"+url.PathEscape(id)+"/settle", apiv1.SettlePoolRequest{Force: force}, &out)
}

// Deposit credits a funder's account (an operator key only).
func (c *Client) Deposit(ctx context.Context, req apiv1.DepositRequest) (ledger.Posted, error) {
	var out ledger.Posted
	return out, c.do(ctx, http.MethodPost, "/api/v1/ledger/deposits", req, &out)
}

// Balances returns ledger balances of one account ("" for all).
func (c *Client) Balances(ctx context.Context, account string) ([]ledger.Balance, error) {
	var out []ledger.Balance
	return out, c.do(ctx, http.MethodGet, "/api/v1/ledger/balances?account="+url.QueryEscape(account), nil, &out)
}

// History returns the transfers touching an account ("" for all).
func (c *Client) History(ctx context.Context, account string) ([]ledger.Posted, error) {
	var out []ledger.Posted
	return out, c.do(ctx, http.MethodGet, "/api/v1/ledger/history?account="+url.QueryEscape(account), nil, &out)
}

// Weights returns a model competition's epoch record (n < 0: the latest).
func (c *Client) Weights(ctx context.Context, competitionID string, n int64) (apiv1.WeightsRecord, error) {
	var out apiv1.WeightsRecord
	path := "/api/v1/competitions/" + url.PathEscape(competitionID) + "/weights"
	if n >= 0 {
		path += fmt.Sprintf("?epoch=%d", n)
	}
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Register registers the client's key as a miner and returns its UID.
func (c *Client) Register(ctx context.Context) (apiv1.Registration, error) {
	var out apiv1.Registration
	return out, c.do(ctx, http.MethodPost, "/api/v1/consensus/uids", nil, &out)
}

// UIDs lists the miner registrations.
func (c *Client) UIDs(ctx context.Context) ([]apiv1.MinerUID, error) {
	var out []apiv1.MinerUID
	return out, c.do(ctx, http.MethodGet, "/api/v1/consensus/uids", nil, &out)
}

// SetStake sets a validator's stake (the client's key must be a hub admin).
func (c *Client) SetStake(ctx context.Context, validatorKey string, stake int64) (apiv1.ValidatorStake, error) {
	var out apiv1.ValidatorStake
	return out, c.do(ctx, http.MethodPost, "/api/v1/consensus/validators", apiv1.SetStakeRequest{Validator: validatorKey, Stake: stake}, &out)
}

// Stakes lists validators and their stakes.
func (c *Client) Stakes(ctx context.Context) ([]apiv1.ValidatorStake, error) {
	var out []apiv1.ValidatorStake
	return out, c.do(ctx, http.MethodGet, "/api/v1/consensus/validators", nil, &out)
}

// CurrentEpoch returns the consensus epoch open on the hub.
func (c *Client) CurrentEpoch(ctx context.Context) (apiv1.EpochInfo, error) {
	var out apiv1.EpochInfo
	return out, c.do(ctx, http.MethodGet, "/api/v1/consensus/epochs/current", nil, &out)
}

// PostWeights posts the client's weight vector for epoch n.
func (c *Client) PostWeights(ctx context.Context, n int64, req apiv1.PostWeightsRequest) (apiv1.WeightVector, error) {
	var out apiv1.WeightVector
	return out, c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/consensus/epochs/%d/weights", n), req, &out)
}

// WeightVectors lists the vectors posted in epoch n.
func (c *Client) WeightVectors(ctx context.Context, n int64) ([]apiv1.WeightVector, error) {
	var out []apiv1.WeightVector
	return out, c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/consensus/epochs/%d/weights", n), nil, &out)
}

// CloseEpoch closes an ended consensus epoch (the client's key must be a hub admin).
func (c *Client) CloseEpoch(ctx context.Context, n int64) (apiv1.ConsensusRecord, error) {
	var out apiv1.ConsensusRecord
	return out, c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/consensus/epochs/%d/close", n), nil, &out)
}

// ConsensusEpoch returns a closed consensus epoch (n < 0: the latest).
func (c *Client) ConsensusEpoch(ctx context.Context, n int64) (apiv1.ConsensusRecord, error) {
	var out apiv1.ConsensusRecord
	path := "/api/v1/consensus/epochs/latest"
	if n >= 0 {
		path = fmt.Sprintf("/api/v1/consensus/epochs/%d", n)
	}
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// CreatePreferenceCompetition creates a preference competition with its
// settings (organic tasks or seeds in req.Dataset).
func (c *Client) CreatePreferenceCompetition(ctx context.Context, req apiv1.CreatePreferenceCompetitionRequest) (competition.Competition, error) {
	var out competition.Competition
	return out, c.do(ctx, http.MethodPost, "/api/v1/preference/competitions", req, &out)
}

// PreferenceCopies asks for the signing miner's copies of a preference
// competition's open tasks.
func (c *Client) PreferenceCopies(ctx context.Context, competitionID string) (apiv1.PreferenceCopies, error) {
	var out apiv1.PreferenceCopies
	return out, c.do(ctx, http.MethodPost, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/preference/copies", struct{}{}, &out)
}

// RatePreference records the signing miner's own rating of its copy of a
// task.
func (c *Client) RatePreference(ctx context.Context, competitionID string, req apiv1.PreferenceRatingRequest) (apiv1.PreferenceRating, error) {
	var out apiv1.PreferenceRating
	return out, c.do(ctx, http.MethodPost, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/preference/ratings", req, &out)
}

// PreferenceEpoch scores a preference competition's epoch (preview: open
// tasks too).
func (c *Client) PreferenceEpoch(ctx context.Context, competitionID string, preview bool) (apiv1.PreferenceEpoch, error) {
	var out apiv1.PreferenceEpoch
	if preview { // open tasks: signed, for the creator or an operator
		resp, err := c.send(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/preference/preview", true)
		if err != nil {
			return out, err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return out, responseError(resp)
		}
		return out, json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&out)
	}
	return out, c.do(ctx, http.MethodGet, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/preference/epoch", nil, &out)
}

// ClosePreference closes a preference competition's epoch and pays its
// reward, or returns the stored record of an epoch already closed.
func (c *Client) ClosePreference(ctx context.Context, competitionID string) (apiv1.PreferenceClose, error) {
	var out apiv1.PreferenceClose
	return out, c.do(ctx, http.MethodPost, "/api/v1/competitions/"+url.PathEscape(competitionID)+"/preference/close", struct{}{}, &out)
}

// ExportPreferences copies a preference export (format dpo, rankings or
// csv; pairs all or adjacent) to w.
func (c *Client) ExportPreferences(ctx context.Context, w io.Writer, competitionID, format, pairs string, preview bool) error {
	q := url.Values{"format": {format}}
	if pairs != "" {
		q.Set("pairs", pairs)
	}
	path := "/api/v1/competitions/" + url.PathEscape(competitionID) + "/preference/export?" + q.Encode()
	if preview { // open tasks: signed, for the creator or an operator
		path = "/api/v1/competitions/" + url.PathEscape(competitionID) + "/preference/preview/export?" + q.Encode()
	}
	resp, err := c.send(ctx, http.MethodGet, path, preview)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// NewContributorKey makes a contributor key for the client's key (the
// miner); the secret is in the answer only.
func (c *Client) NewContributorKey(ctx context.Context, label string) (apiv1.NewContributorKey, error) {
	var out apiv1.NewContributorKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/contributor-keys", apiv1.CreateContributorKeyRequest{Label: label}, &out)
}

// ContributorKeys lists the client key's contributor keys (a signed read).
func (c *Client) ContributorKeys(ctx context.Context) ([]apiv1.ContributorKey, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/contributor-keys", true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, responseError(resp)
	}
	var out []apiv1.ContributorKey
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode contributor keys: %w", err)
	}
	return out, nil
}

// RevokeContributorKey revokes one of the client key's contributor keys.
func (c *Client) RevokeContributorKey(ctx context.Context, id string) (apiv1.ContributorKey, error) {
	var out apiv1.ContributorKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/contributor-keys/"+url.PathEscape(id)+"/revoke", struct{}{}, &out)
}

// send makes a bodiless request, signed when sign is set.
func (c *Client) send(ctx context.Context, method, path string, sign bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if sign {
		if c.key == nil {
			return nil, fmt.Errorf("%s %s must be signed: pass --key KEYFILE", method, path)
		}
		if err := c.sign(ctx, req, path, nil); err != nil {
			return nil, err
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach the crucible server at %s: %w (is `crucible serve` running?)", c.base, err)
	}
	return resp, nil
}

// responseError turns an error response into an *APIError.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(data))
	}
	return &APIError{StatusCode: resp.StatusCode, Message: e.Error}
}

// PreferenceLabels fetches a preference competition's closed tasks and their
// ratings (validators with stake only).
func (c *Client) PreferenceLabels(ctx context.Context, competitionID string) (apiv1.PreferenceLabels, error) {
	var out apiv1.PreferenceLabels
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/consensus/competitions/"+url.PathEscape(competitionID)+"/labels", true)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return out, responseError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&out); err != nil {
		return out, fmt.Errorf("decode preference labels: %w", err)
	}
	return out, nil
}

// PatchTasks fetches a code-fix competition's full task definitions
// (validators with stake only).
func (c *Client) PatchTasks(ctx context.Context, competitionID string) ([]patch.Task, error) {
	var out []patch.Task
	return out, c.getSigned(ctx, "/api/v1/consensus/competitions/"+url.PathEscape(competitionID)+"/patch-tasks", &out)
}

// getSigned GETs a signed JSON answer of at most 256 MiB into out.
func (c *Client) getSigned(ctx context.Context, path string, out any) error {
	resp, err := c.send(ctx, http.MethodGet, path, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// PatchBundle downloads the repository bundle with a hex sha256 digest that
// a task of the competition names (validators with stake only). It refuses
// an answer over patch.MaxBundleBytes before reading it, and one whose
// bytes do not hash to digest: the hub serving it is not trusted.
func (c *Client) PatchBundle(ctx context.Context, competitionID, digest string) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/consensus/competitions/"+url.PathEscape(competitionID)+"/bundles/"+url.PathEscape(digest), true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, responseError(resp)
	}
	if resp.ContentLength > patch.MaxBundleBytes {
		return nil, fmt.Errorf("repository bundle %s: %d bytes is over the limit of %d", digest, resp.ContentLength, patch.MaxBundleBytes)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, patch.MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("repository bundle %s: %w", digest, err)
	}
	if len(data) > patch.MaxBundleBytes {
		return nil, fmt.Errorf("repository bundle %s is over the limit of %d bytes", digest, patch.MaxBundleBytes)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("repository bundle %s: the bytes served hash to %s, not the digest the competition committed to", digest, hex.EncodeToString(sum[:]))
	}
	return data, nil
}

// PatchSubmissions fetches every code-fix submission's patch of a
// competition (validators with stake, the competition's creator and
// operators only: public views seal the diffs).
func (c *Client) PatchSubmissions(ctx context.Context, competitionID string) ([]apiv1.PatchSubmission, error) {
	var out []apiv1.PatchSubmission
	return out, c.getSigned(ctx, "/api/v1/consensus/competitions/"+url.PathEscape(competitionID)+"/patches", &out)
}
