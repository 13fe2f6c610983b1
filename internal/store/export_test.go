package store

// ImportBatch lets the tests size an import to span several batches.
const ImportBatch = importBatch

// ResponseHash lets the tests hash responses as CompetitionResponseHashes does.
var ResponseHash = responseHash
