package store_test

import (
	"context"
	"strings"
	"testing"

	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

func TestHubIDIsMadeOncePerDatabase(t *testing.T) {
	ctx := context.Background()
	seen := map[string]string{}
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			first, err := db.HubID(ctx)
			db.Close()
			if err != nil || !strings.HasPrefix(first, "hub_") || len(first) != 36 {
				t.Fatalf("HubID = %q, %v; want hub_ and 32 hex digits", first, err)
			}
			again, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if id, err := again.HubID(ctx); err != nil || id != first {
				t.Fatalf("after reopening: HubID = %q, %v; want the same %q", id, err, first)
			}
			for other, id := range seen {
				if id == first {
					t.Fatalf("the %s and %s databases share the hub id %s", other, d.Name, id)
				}
			}
			seen[d.Name] = first
		})
	}
}
