package app

import "crucible/internal/eval/kinds"

// ValidatorEndpoints are a validator's own generator, reference and judge
// (crucible validator run --generator-url, --reference-url, --judge-url)
// with their keys from the same environment variables as the hub's
// (EnvGeneratorKey, EnvReferenceKey, EnvJudgeKey): each key is sent to its
// own URL only.
func ValidatorEndpoints(generator, reference, judge string) map[kinds.Role]kinds.OperatorEndpoint {
	return operatorEndpoints(generator, reference, judge)
}
