// Package apiv1 holds the wire types of Crucible's REST API /api/v1: the
// request and response bodies that the hub's handlers (internal/api) and
// services write and that the client, the CLI and the validator node
// decode. It is data only, so the client side shares the hub's types
// without importing any server package (see internal/deps_test.go).
//
// Some bodies the hub reads or writes are its own types, which cannot be
// these: the store's rows (store.MinerUID and the like; the store never
// imports the API) and the services' types (pool, labeling, consensus,
// weights, seal), which the web UI imports and which so may not import this
// package: its request types carry the kinds' settings. The types here that
// mirror them say which, and internal/api's tests check them field by field,
// so both sides encode the same JSON.
package apiv1

// HubInfo is the body of GET /api/v1/hub: the id that request signatures
// for this hub name as their audience (see internal/identity).
type HubInfo struct {
	HubID string `json:"hub_id"`
}
