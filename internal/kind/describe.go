package kind

import (
	"crucible/internal/competition"
	"crucible/internal/eval"
)

// Message is one message of a conversation an item page shows.
type Message struct {
	// Role is "system", "user" or "assistant" (the evaluated model's side).
	Role, Text string
}

// ItemView is how a kind shows one evaluated item to people, in place of
// the generic prompt, response, parsed answer and verdict.
type ItemView struct {
	// Card is the system message (a character card), shown collapsed.
	Card string
	// Turns is the conversation the model answered; Reply is its answer.
	Turns []Message
	Reply string
	// Reference is the reply the answer was judged against ("": none).
	// Pages show it only where the item itself is public.
	Reference string
	// Grades are the judge's sub-scores and the score's components.
	Grades []Rule
	// Rationale is the judge's reasons, one line per verdict.
	Rationale []Rule
}

// ItemDescriber is a kind whose evaluated items read better as its own
// view than as a prompt and a parsed answer (a roleplay chat).
type ItemDescriber interface {
	DescribeItem(c competition.Competition, r eval.Result) (ItemView, error)
}

// Counter is a kind that says whether a card's count of correct items
// means anything to people; a kind that is not a Counter counts them.
type Counter interface {
	CountsCorrect(c competition.Competition) bool
}

// DescribeItem returns the kind's view of result r of a c submission; ok is
// false when c's kind has none (callers show the generic row).
func (r *Registry) DescribeItem(c competition.Competition, res eval.Result) (v ItemView, ok bool, err error) {
	d, ok := r.lookup(string(c.Kind)).(ItemDescriber)
	if !ok {
		return ItemView{}, false, nil
	}
	v, err = d.DescribeItem(c, res)
	return v, true, err
}

// CountsCorrect reports whether c's cards count correct items that people
// should be shown.
func (r *Registry) CountsCorrect(c competition.Competition) bool {
	if k, ok := r.lookup(string(c.Kind)).(Counter); ok {
		return k.CountsCorrect(c)
	}
	return true
}
