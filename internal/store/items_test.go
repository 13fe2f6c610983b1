package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"crucible/internal/store"
)

// An import spanning several batches (the last one short) reads back in
// order and byte for byte.
func testImportRoundTrip(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 0)
	c.ID = store.NewID("c")
	want := importRows(2*store.ImportBatch + 7)
	if err := db.CreateCompetition(ctx, c, want); err != nil {
		t.Fatal(err)
	}
	got, err := db.CompetitionItems(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read back %d items, imported %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("item %d = %s, imported %s", i, got[i], want[i])
		}
	}
	if back, err := db.GetCompetition(ctx, c.ID); err != nil || back.Items != len(want) {
		t.Fatalf("competition items_total = %d (%v), want %d", back.Items, err, len(want))
	}
}

// An import whose very last row the database rejects (a trigger stands in
// for any row-level failure: a constraint, a bad value) leaves neither the
// competition nor any of the batches already inserted.
func testImportFailsAtLastRow(t *testing.T, db *store.DB) {
	ctx := context.Background()
	rejectRow(t, db, `"bad row"`)
	c := newCompetition(t, db, 0)
	c.ID = store.NewID("c")
	rows := append(importRows(2*store.ImportBatch+7), json.RawMessage(`"bad row"`))
	if err := db.CreateCompetition(ctx, c, rows); err == nil {
		t.Fatal("an import with a rejected last row succeeded")
	}
	if _, err := db.GetCompetition(ctx, c.ID); err == nil {
		t.Fatal("the competition of a failed import exists")
	}
	var n int
	if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM competition_items WHERE competition_id = '`+c.ID+`'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a failed import left %d items behind", n)
	}
}

// importRows returns n distinct JSON rows, some with characters that need
// care in an array literal or a multi-row statement.
func importRows(n int) []json.RawMessage {
	rows := make([]json.RawMessage, n)
	for i := range rows {
		rows[i] = json.RawMessage(fmt.Sprintf(`{"i":%d,"q":"a, \"b\" {c} 'd' \\ é"}`, i))
	}
	return rows
}

// rejectRow makes the database refuse to store an item whose payload is bad.
func rejectRow(t *testing.T, db *store.DB, bad string) {
	t.Helper()
	ddl := []string{`CREATE TRIGGER reject_bad_row BEFORE INSERT ON competition_items
		WHEN NEW.payload = '` + bad + `' BEGIN SELECT RAISE(ABORT, 'rejected row'); END`}
	if db.Dialect() == store.Postgres {
		ddl = []string{`CREATE FUNCTION reject_bad_row() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.payload = '` + bad + `' THEN RAISE EXCEPTION 'rejected row'; END IF; RETURN NEW; END $$`,
			`CREATE TRIGGER reject_bad_row BEFORE INSERT ON competition_items FOR EACH ROW EXECUTE FUNCTION reject_bad_row()`}
	}
	for _, q := range ddl {
		if _, err := db.SQL().ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}
