package store

// ImportBatch lets the tests size an import to span several batches.
const ImportBatch = importBatch
