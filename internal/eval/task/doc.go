// Package task reads lm-evaluation-harness task files and turns a data set
// into the requests lm-eval would send, then scores the answers as lm-eval
// would: a benchmark is a file, not Go code. It is the core of the `task`
// kind: no store, queue or API. Evaluator sends an item's requests to a
// model server over /v1/completions (echoed log-probabilities for
// multiple_choice and loglikelihood, a completion per repeat for
// generate_until) and scores them. PredictionsEvaluator scores a
// generate_until task from a predictions file instead, with no model: JSONL
// lines {"doc_id": N, "response": "..."}, doc_id the item's index in the
// evaluation split from 0 (its row, as `crucible task render --index`
// counts), response the raw text, cut at the until strings and filtered
// exactly as a live generation is. A doc without a line scores 0 on every
// metric; a doc_id out of range or given twice, a missing or unknown field,
// or a line over MaxPredictionLineBytes is refused with its line. Only
// generate_until tasks with repeats 1 take predictions: multiple_choice and
// loglikelihood items are scored from per-choice log-likelihoods, which a
// response does not carry. Sub-package presets ships task files
// with a sample of their data in the binary.
//
// Supported keys (anything else that could change a result is refused with
// its FILE:LINE):
//   - task, dataset_path (json, csv or parquet with dataset_kwargs.data_files — a
//     file, a list, or split → files, relative to the task file; any other
//     name is a hub data set whose rows the caller supplies), dataset_name,
//     test_split, validation_split, training_split, fewshot_split;
//   - output_type multiple_choice, generate_until and loglikelihood
//     (loglikelihood_rolling and others are refused);
//   - doc_to_text (a template or a column name), doc_to_target (a
//     template, a column name or an integer; digits become a choice index
//     when the task has choices, as lm-eval's isdigit rule), doc_to_choice
//     (a list of templates, a list column, or one {{ expression }} giving a
//     list); description (a template), target_delimiter (" "),
//     fewshot_delimiter ("\n\n"), num_fewshot, fewshot_config.sampler
//     (default or first_n), repeats;
//   - generation_kwargs until (string or list; default [fewshot_delimiter]),
//     max_gen_toks (256), temperature, do_sample;
//   - filter_list pipelines of regex (regex_pattern, group_select with
//     negative indices, fallback "[invalid]"), take_first, lowercase,
//     uppercase, strip, remove_whitespace, majority_vote, and Crucible's
//     own mcq_answer (MCQAnswer: the choice a free-text answer names, read
//     as the mcq kind reads it; needs doc_to_choice);
//   - metric_list acc, acc_norm, exact_match (ignore_case,
//     ignore_punctuation, regexes_to_ignore on prediction and reference),
//     aggregation mean, higher_is_better.
//
// Ignored keys (they change no result): tag, group, group_alias,
// task_alias, metadata, should_decontaminate, doc_to_decontamination_query,
// unsafe_code, and dataset_kwargs other than data_files (download options).
//
// Refused: !function (Python code: process_docs, process_results, custom
// filters or metrics), include (inheriting another task file: write the
// keys out), YAML aliases and merge keys, use_prompt, doc_to_image,
// gen_prefix, custom_dataset, multiple-input docs (an integer or list doc_to_text), several gold
// targets (a list doc_to_target), fewshot_config samples, other filters
// and metrics, other generation_kwargs.
// Rows come from JSONL, CSV (values stay strings) or Parquet (through
// github.com/parquet-go/parquet-go), bounded in size (a file, a line or
// Parquet row, and the values or fields of a file), errors naming the
// file and line (row, for Parquet).
//
// Regular expressions use Go's RE2 syntax: lookaround and backreferences
// are refused at load.
//
// Templates are Jinja2 through github.com/ardanlabs/jinja, with Jinja2's
// default whitespace (see Template). Statements: if/elif/else, for (not
// nested, not recursive), set (not of an attribute); comments; "-"
// whitespace markers. Expressions: + - / % //, comparison, and/or/not,
// in, ~, inline if, list and dict literals, indexing and slicing,
// attribute access, string methods (strip, split, replace, startswith,
// lower…) and the built-in filters of allowedFilters (int, float, string,
// trim, lower, upper, replace, join, first, last, length…).
// Refused at load with the template's line: other statements (macro, call,
// raw, include, extends, block, filter), other filters (lm-eval's
// regex_replace), and whatever can allocate without bound in one step
// (budget.go): * and ** unless between number literals (2 * 3);
// range() unless over integer literals spanning at most MaxRangeLen or
// over lengths (range(choices|length)); replace (filter or method) unless
// its arguments are string literals; join unless its separator is one;
// indent unless its width is a literal up to MaxIndent; tojson with
// arguments; strip, lstrip, rstrip and trim unless their characters are a
// literal of at most 64; map's default unless a literal; the format,
// append, insert and update methods and namespace(); names
// starting with "__"; a tag over MaxTagBytes or nested over 32 brackets;
// and an expression that can grow its operands more than MaxExprGrowth
// times (its names times the growth of its replace, join, indent and
// tojson: x|replace("a", "aaaa") is 4, a ~ b ~ c is 3).
//
// Rendering is metered (the template is rewritten so each printed value,
// set value, loop and name read passes through the meter of its Render):
// a render fails, naming the task file, the template's field and line,
// past MaxRenderBytes of output and set values, MaxRenderIterations loop
// iterations or MaxRenderReads bytes of values read. A prompt with its
// few-shot examples is at most MaxPromptBytes, and a task's items
// together MaxItemsBytes, errors naming the doc. With these bounds a task
// file and its rows may come from an untrusted key.
//
// As under lm-eval's StrictUndefined, a row without a field a template
// reads is a bad row — unless the template tests for it (is defined,
// default), when an undefined name renders empty. The engine is laxer in one way: "2" - 1 is
// 1 where Python raises a TypeError.
//
// Differences from lm-eval that do not change the format: few-shot
// examples are drawn by a generator seeded per (seed, doc), not Python's
// random.Random(1234) shared across docs, so the examples differ; acc_norm
// divides by the choice's length in bytes where lm-eval divides by
// characters (the same for ASCII); a regex group_select out of range gives
// the fallback where Python raises IndexError.
package task
