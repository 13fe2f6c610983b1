package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// A response hash stands for a raw response where only equality matters
// (copy marking): the first 16 bytes of its SHA-256, so two different
// responses hash alike with probability 2⁻¹²⁸ however they were chosen.
const responseHashLen = 16

func responseHash(response string) string {
	sum := sha256.Sum256([]byte(response))
	return string(sum[:responseHashLen])
}

// encodeResponseHashes packs the hashes of the non-empty responses by item
// as (uvarint item, hash) in item order. An empty response is no answer to
// copy marking (competition.MarkCopies), so it is left out.
func encodeResponseHashes(responses map[int]string) []byte {
	var b []byte
	for _, i := range slices.Sorted(maps.Keys(responses)) {
		if responses[i] == "" {
			continue
		}
		b = binary.AppendUvarint(b, uint64(i))
		b = append(b, responseHash(responses[i])...)
	}
	if b == nil {
		return []byte{} // no answers, but stored: the column is NOT NULL
	}
	return b
}

func decodeResponseHashes(b []byte) (map[int]string, error) {
	out := map[int]string{}
	for len(b) > 0 {
		i, n := binary.Uvarint(b)
		if n <= 0 || len(b)-n < responseHashLen {
			return nil, errors.New("corrupt response hashes")
		}
		out[int(i)] = string(b[n : n+responseHashLen])
		b = b[n+responseHashLen:]
	}
	return out, nil
}

// storeResponseHashes records submission id's response hashes from its
// item results inside tx, the transaction that scores it: the results are
// all in by then, and a later scoring (after a rescore) rewrites them.
func (db *DB) storeResponseHashes(ctx context.Context, tx *sql.Tx, id string) error {
	rows, err := tx.QueryContext(ctx, db.rebind(`SELECT idx, response FROM item_results WHERE submission_id = ?`), id)
	if err != nil {
		return fmt.Errorf("responses of %s: %w", id, err)
	}
	responses := map[int]string{}
	for rows.Next() {
		var i int
		var r string
		if err := rows.Scan(&i, &r); err != nil {
			rows.Close()
			return err
		}
		responses[i] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, db.rebind(`INSERT INTO response_hashes (submission_id, hashes) VALUES (?, ?)
		ON CONFLICT (submission_id) DO UPDATE SET hashes = excluded.hashes`), id, encodeResponseHashes(responses))
	if err != nil {
		return fmt.Errorf("store response hashes of %s: %w", id, err)
	}
	return nil
}

// CompetitionResponseHashes returns, by submission id and item index, the
// hashes of a competition's non-empty raw responses: equal exactly where
// the responses are (but for a 2⁻¹²⁸ chance), which is all copy marking
// compares. It is CompetitionResponses without the empty responses, read
// from one row per scored submission; a submission with no stored hashes
// (not scored yet, or scored before they were stored) has its results read
// and hashed. One statement, so one snapshot: a scoring that commits
// meanwhile is seen in neither part or in one.
func (db *DB) CompetitionResponseHashes(ctx context.Context, competitionID string) (map[string]map[int]string, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT h.submission_id, 1, 0, '', h.hashes FROM response_hashes h
		JOIN submissions s ON s.id = h.submission_id WHERE s.competition_id = ?
		UNION ALL
		SELECT r.submission_id, 0, r.idx, r.response, NULL FROM item_results r JOIN submissions s ON s.id = r.submission_id
		WHERE s.competition_id = ? AND NOT EXISTS (SELECT 1 FROM response_hashes h WHERE h.submission_id = s.id)`),
		competitionID, competitionID)
	if err != nil {
		return nil, fmt.Errorf("response hashes of competition %s: %w", competitionID, err)
	}
	defer rows.Close()
	out := map[string]map[int]string{}
	for rows.Next() {
		var sub, resp string
		var stored, i int
		var hashes []byte
		if err := rows.Scan(&sub, &stored, &i, &resp, &hashes); err != nil {
			return nil, err
		}
		if stored == 1 {
			if out[sub], err = decodeResponseHashes(hashes); err != nil {
				return nil, fmt.Errorf("submission %s: %w", sub, err)
			}
			continue
		}
		if out[sub] == nil {
			out[sub] = map[int]string{}
		}
		if resp != "" {
			out[sub][i] = responseHash(resp)
		}
	}
	return out, rows.Err()
}
