package app

import "crucible/internal/modelhost"

// Models configures how this process's workers serve artifact
// submissions (modelhost.Config). Without CacheDir and Launcher its workers
// serve none (an artifact submission then meets an infrastructure failure
// and waits for its retries, which another worker may take).
type Models = modelhost.Config
