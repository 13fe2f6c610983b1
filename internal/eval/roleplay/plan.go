package roleplay

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"crucible/internal/inference"
)

// Endpoint is a model behind an OpenAI-compatible server.
type Endpoint struct {
	// Client talks to the server.
	Client *inference.Client
	// Model is the model name sent with every request.
	Model string
}

func (e Endpoint) check(what string) error {
	if e.Client == nil {
		return fmt.Errorf("roleplay: %s client is nil", what)
	}
	if strings.TrimSpace(e.Model) == "" {
		return fmt.Errorf("roleplay: %s model name is empty", what)
	}
	return nil
}

// Defaults of PlanConfig and Config.
const (
	// DefaultItems is the number of items Plan generates when PlanConfig.Items is 0.
	DefaultItems = 24
	// DefaultTurns is the number of user messages per conversation when PlanConfig.Turns is 0.
	DefaultTurns = 2
	// DefaultMaxTokens bounds every generated message when MaxTokens is 0.
	DefaultMaxTokens = 256
	// DefaultConcurrency is the number of items planned at once when PlanConfig.Concurrency is 0.
	DefaultConcurrency = 4
)

// Item is one planned conversation: a character card and a conversation
// that starts with the character's greeting and ends with a user message,
// which the evaluated model answers in character. Items are JSON-encoded
// for storage.
type Item struct {
	// ID is "rp-<seed>-<index>".
	ID string `json:"id"`
	// Seed is the request seed used for this item's generations and
	// answers.
	Seed int64 `json:"seed"`
	// Character is the card the model plays.
	Character Character `json:"character"`
	// Conversation is the history the model answers.
	Conversation []Turn `json:"conversation"`
	// Reference, when set, is a stored reference reply used instead of
	// asking the reference model at evaluation time.
	Reference string `json:"reference,omitempty"`
}

// LastUser returns the content of the item's last user message.
func (it Item) LastUser() string {
	for i := len(it.Conversation) - 1; i >= 0; i-- {
		if it.Conversation[i].Role == RoleUser {
			return it.Conversation[i].Content
		}
	}
	return ""
}

// PlanConfig configures Plan.
type PlanConfig struct {
	// Seed determines the items: the same seed, personas and generator give
	// the same items.
	Seed int64
	// Items is the number of items; 0 means DefaultItems.
	Items int
	// Turns is the number of user messages per conversation (the first is
	// an opener from the card, the others are generated); 0 means
	// DefaultTurns.
	Turns int
	// Personas is the persona set; nil means DefaultPersonas.
	Personas []Character
	// Generator plays both sides of the history after the opener: the
	// character through the chat template and the user through
	// UserSimMessages. Required when Turns > 1.
	Generator Endpoint
	// MaxTokens bounds every generated message; 0 means DefaultMaxTokens.
	MaxTokens int
	// Concurrency is the number of items generated at once; 0 means
	// DefaultConcurrency. It does not change the items.
	Concurrency int
	// Avoid holds items whose openings (card and opener) the planned items
	// must not repeat, wherever the card's openers or DefaultOpeners leave
	// one (see opener): a fresh
	// epoch's items avoid the practice items', since a generator at
	// temperature 0 would rebuild a practice conversation word for word
	// from its opening, and a model that memorised the practice answers
	// would score on it.
	Avoid []Item
}

// Plan generates cfg.Items conversation items from cfg.Seed. Item i's card
// is the i-th card (cycling) of a seeded shuffle of the persona set and its
// opener a seeded pick from the card's openers (another where the pick
// would repeat an opening in Avoid; see opener); every later turn comes from
// the generator with temperature 0 and seed Item.Seed, so with a
// deterministic generator the same seed always yields the same items. The
// selection uses SHA-256 of the seed, never math/rand, so it is stable
// across Go releases. Generator errors are returned as they are (see
// inference.IsPermanent); an empty generated message is an error.
func Plan(ctx context.Context, cfg PlanConfig) ([]Item, error) {
	n := cfg.Items
	if n == 0 {
		n = DefaultItems
	}
	turns := cfg.Turns
	if turns == 0 {
		turns = DefaultTurns
	}
	if n < 0 || turns < 0 {
		return nil, fmt.Errorf("roleplay: plan: Items (%d) and Turns (%d) must not be negative", cfg.Items, cfg.Turns)
	}
	if turns > 1 {
		if err := cfg.Generator.check("generator"); err != nil {
			return nil, err
		}
	}
	maxTokens := cfg.MaxTokens
	if maxTokens == 0 {
		maxTokens = DefaultMaxTokens
	}
	personas := cfg.Personas
	if personas == nil {
		var err error
		if personas, err = DefaultPersonas(); err != nil {
			return nil, err
		}
	}
	if len(personas) == 0 {
		return nil, errors.New("roleplay: plan: empty persona set")
	}
	order := shuffle(cfg.Seed, personas)
	avoid := map[[2]string]bool{}
	for _, it := range cfg.Avoid {
		if len(it.Conversation) >= 2 && it.Conversation[1].Role == RoleUser {
			avoid[[2]string{it.Character.Name, it.Conversation[1].Content}] = true
		}
	}
	items := make([]Item, n)
	for i := range items {
		c := personas[order[i%len(order)]]
		items[i] = Item{
			ID:        fmt.Sprintf("rp-%d-%d", cfg.Seed, i),
			Seed:      int64(mix(cfg.Seed, "seed", uint64(i)) >> 33), // fits an int on every platform
			Character: c,
			Conversation: []Turn{
				{Role: RoleCharacter, Content: c.Greeting},
				{Role: RoleUser, Content: opener(c, mix(cfg.Seed, "opener", uint64(i)), avoid)},
			},
		}
	}
	if turns == 1 {
		return items, nil
	}
	workers := cfg.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := extend(ctx, cfg.Generator, &items[i], turns, maxTokens); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("roleplay: plan item %d: %w", i, err)
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range items {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("roleplay: plan: %w", err)
	}
	return items, nil
}

// opener picks a first user message for card c from the seeded value m:
// the m-th of its openers (cycling), or the next after it that no avoided
// item opened c with; when every one was, the same among DefaultOpeners
// (a card with one opener would otherwise open every fresh item as its
// practice item does); when those were too, the m-th of its openers.
func opener(c Character, m uint64, avoid map[[2]string]bool) string {
	openers := c.Openers
	if len(openers) == 0 {
		openers = DefaultOpeners()
	}
	for _, cands := range [][]string{openers, DefaultOpeners()} {
		start := int(m % uint64(len(cands)))
		for step := range len(cands) {
			if o := cands[(start+step)%len(cands)]; !avoid[[2]string{c.Name, o}] {
				return o
			}
		}
	}
	return openers[m%uint64(len(openers))]
}

// extend grows it's conversation to turns user messages with the generator.
func extend(ctx context.Context, gen Endpoint, it *Item, turns, maxTokens int) error {
	for users := 1; users < turns; users++ {
		reply, err := complete(ctx, gen, Messages(it.Character, it.Conversation), maxTokens, it.Seed)
		if err != nil {
			return fmt.Errorf("generate character turn: %w", err)
		}
		it.Conversation = append(it.Conversation, Turn{Role: RoleCharacter, Content: reply})
		user, err := complete(ctx, gen, UserSimMessages(it.Character, it.Conversation), maxTokens, it.Seed)
		if err != nil {
			return fmt.Errorf("generate user turn: %w", err)
		}
		it.Conversation = append(it.Conversation, Turn{Role: RoleUser, Content: user})
	}
	return nil
}

// complete sends one deterministic chat request (temperature 0, seed) and
// returns the trimmed answer; an empty answer is an error.
func complete(ctx context.Context, e Endpoint, msgs []inference.ChatMessage, maxTokens int, seed int64) (string, error) {
	s := int(seed)
	zero := 0.0
	resp, err := e.Client.Chat(ctx, inference.ChatRequest{
		Model: e.Model, Messages: msgs, MaxTokens: maxTokens, Temperature: &zero, Seed: &s,
	})
	if err != nil {
		return "", err
	}
	if len(resp.Choices) == 0 {
		return "", fmt.Errorf("model %s: chat completion has no choices", e.Model)
	}
	text := strings.TrimSpace(resp.Choices[0].Message.Content)
	if text == "" {
		return "", fmt.Errorf("model %s: empty message", e.Model)
	}
	return text, nil
}

// mix hashes (seed, purpose, i) into a uint64 with SHA-256.
func mix(seed int64, purpose string, i uint64) uint64 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seed))
	binary.BigEndian.PutUint64(b[8:], i)
	h := sha256.New()
	h.Write(b[:])
	h.Write([]byte(purpose))
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// shuffle returns a seeded permutation of the persona indexes: sorted by
// the hash of (seed, name), ties by index.
func shuffle(seed int64, cs []Character) []int {
	keys := make([]uint64, len(cs))
	order := make([]int, len(cs))
	for i, c := range cs {
		order[i] = i
		h := sha256.Sum256([]byte(c.Name))
		keys[i] = mix(seed, "persona", binary.BigEndian.Uint64(h[:8]))
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case keys[a] < keys[b]:
			return -1
		case keys[a] > keys[b]:
			return 1
		}
		return 0
	})
	return order
}

// Digest returns the hex SHA-256 of the canonical JSON of items, the
// dataset digest of a planned evaluation.
func Digest(items []Item) string {
	return digestJSON(items)
}
