package api

import "crucible/internal/competition"

// RouteInfo is one API route as the route walk in seal_test.go sees it.
type RouteInfo struct {
	Method, Pattern string
	Signed          bool
}

// AllRoutes lists every API route, from the same tables New serves.
func AllRoutes() []RouteInfo {
	var out []RouteInfo
	for _, rts := range [][]route{routes, validatorRoutes, labelRoutes, roleplayRoutes} {
		for _, rt := range rts {
			out = append(out, RouteInfo{rt.method, rt.pattern, rt.signed})
		}
	}
	return out
}

// PlantBoard caches rows (encoded as body) as competition id's leaderboard
// at version, as a computation of that version would have.
func (s *Server) PlantBoard(id string, version int64, body []byte, rows []competition.Row) {
	s.boards.mu.Lock()
	defer s.boards.mu.Unlock()
	s.boards.put(id, board{version: version, body: body, etag: `"planted"`, rows: rows})
}
