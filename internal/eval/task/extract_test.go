package task

import "testing"

func TestExtract(t *testing.T) {
	siqa := []string{"make a new plan", "Go home and see Riley", "Find somewhere to go"}
	sydney := []string{"sympathetic", "like a person who was unable to help", "incredulous"}
	nested := []string{"home", "go home", "stay out"}
	four := []string{"red", "green", "blue", "yellow"}
	tests := []struct {
		name     string
		response string
		choices  []string
		want     int
	}{
		{"a bare capital letter is read", "B", siqa, 1},
		{"a bare lowercase letter is read", "c", siqa, 2},
		{"a letter with a parenthesis is read", "b)", siqa, 1},
		{"a parenthesised letter is read", "(B)", siqa, 1},
		{"a bracketed letter is read", "[C]", siqa, 2},
		{"a letter with a period is read", "A.", siqa, 0},
		{"letter and choice text are read", "B) Go home and see Riley", siqa, 1},
		{"a letter with a dot and text is read", "C. Find somewhere to go", siqa, 2},
		{"surrounding whitespace is ignored", "  \n B \n", siqa, 1},
		{"markdown bold is ignored", "**C**", siqa, 2},
		{"an answer marker is read", "Answer: B.", siqa, 1},
		{"a lowercase answer phrase is read", "The answer is b", siqa, 1},
		{"a parenthesised answer after a marker is read", "I believe the correct answer is (C) because Tracy left.", siqa, 2},
		{"an answer option marker is read", "The answer is option A.", siqa, 0},
		{"a correct-choice marker is read", "Correct choice: B", siqa, 1},
		{"a number marker is read", "Answer: 2", siqa, 1},
		{"a bare number is read", "3", siqa, 2},
		{"a number with a parenthesis is read", "1)", siqa, 0},
		{"the last answer marker wins", "Answer: A... wait, no. Final answer: C", siqa, 2},
		{"an article A does not beat an explicit marker", "A good plan matters here. Answer: C", siqa, 2},
		{"an article A does not beat a lowercase marker", "A person would think so; the answer is b.", siqa, 1},
		{"an article after answer is not a letter", "The answer is a new plan, so make a new plan", siqa, 0},
		{"choice text alone is read", "Go home and see Riley", siqa, 1},
		{"choice text is case and punctuation insensitive", "go home, and see riley!", siqa, 1},
		{"choice text inside a sentence is read", "Tracy should find somewhere to go.", siqa, 2},
		{"an article-led choice text is read", "like a person who was unable to help", sydney, 1},
		{"the longest containing choice wins", "go home", nested, 1},
		{"a shorter choice alone is read", "home", nested, 0},
		{"two unrelated choices are ambiguous", "Either make a new plan or find somewhere to go", siqa, -1},
		{"a standalone capital letter in a sentence is read", "I'd go with B here", siqa, 1},
		{"two standalone letters are ambiguous", "B or C", siqa, -1},
		{"a pronoun I is not a letter", "I think so", four, -1},
		{"a letter beyond the choices is not read", "E", siqa, -1},
		{"a number beyond the choices is not read", "Answer: 4", siqa, -1},
		{"a thinking block is ignored", "<think>Maybe A? Answer: A</think>\nAnswer: D", four, 3},
		{"only what follows the last thinking block is read", "<think>B</think> Answer: A <think>Answer: B</think>\nAnswer: C", four, 2},
		{"a thinking block ending the response leaves nothing", "Answer: A <think>B</think>", four, -1},
		{"an empty response is not parsed", "", siqa, -1},
		{"gibberish is not parsed", "I cannot help with that.", siqa, -1},
		{"a lowercase article-led sentence is not read", "a tough call", siqa, -1},
		{"an A followed by its own text is read", "A make a new plan", siqa, 0},
		{"an A followed by other text is not a letter", "A person would go home", siqa, -1},
		{"a letter followed by a word is read", "B Go home", siqa, 1},
		{"a shorter choice inside a longer answer follows the longer", "A person would go home", nested, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ExtractChoice(tt.response, tt.choices)
			if got != tt.want || ok != (tt.want >= 0) {
				t.Fatalf("ExtractChoice(%q) = %d, %v; want %d", tt.response, got, ok, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Go home, and see Riley!", "go home and see riley"},
		{"  didn't  ", "didnt"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := normalize(tt.in); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// BenchmarkExtractChoiceLong is a paragraph-long answer without a thinking
// block, whose search for one runs over the whole response.
func BenchmarkExtractChoiceLong(b *testing.B) {
	siqa := []string{"make a new plan", "Go home and see Riley", "Find somewhere to go"}
	r := "Tracy resisted Riley's attacks and did not go home that evening, so before this she had to find somewhere to go. The answer is C."
	for b.Loop() {
		if i, ok := ExtractChoice(r, siqa); !ok || i != 2 {
			b.Fatal(i, ok)
		}
	}
}
