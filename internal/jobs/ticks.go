package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// The periodic tasks' job kinds: one args type each, so River dispatches
// them by kind and a process without a task simply has no worker for it.
type (
	// PoolTickArgs ticks every open pool (pool.Service.TickAll).
	PoolTickArgs struct{ tick }
	// EpochCloseArgs closes due model-competition epochs.
	EpochCloseArgs struct{ tick }
	// ConsensusCloseArgs closes due validator consensus epochs.
	ConsensusCloseArgs struct{ tick }
	// PreferenceCloseArgs closes due preference labeling rounds.
	PreferenceCloseArgs struct{ tick }
	// FreshTickArgs opens fresh roleplay epochs and enqueues their evaluations.
	FreshTickArgs struct{ tick }
)

// Kind names the job kind in the queue.
func (PoolTickArgs) Kind() string { return "tick_pools" }

// Kind names the job kind in the queue.
func (EpochCloseArgs) Kind() string { return "tick_epoch_close" }

// Kind names the job kind in the queue.
func (ConsensusCloseArgs) Kind() string { return "tick_consensus_close" }

// Kind names the job kind in the queue.
func (PreferenceCloseArgs) Kind() string { return "tick_preference_close" }

// Kind names the job kind in the queue.
func (FreshTickArgs) Kind() string { return "tick_roleplay_fresh" }

// tick gives every periodic args type its insert options: one attempt, and
// unique among queued and running jobs, so runs never pile up behind a
// slow one.
type tick struct{}

// InsertOpts makes a task's runs unique among queued and running jobs.
func (tick) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: unfinished}}
}

// unfinished are the states of a job not yet done, for uniqueness among them.
var unfinished = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// tickWorker runs one periodic task.
type tickWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	run func(ctx context.Context) error
}

// Work runs the task.
func (w *tickWorker[T]) Work(ctx context.Context, _ *river.Job[T]) error { return w.run(ctx) }

// addTick registers the worker of args's task and schedules it every interval.
func addTick[T river.JobArgs](workers *river.Workers, rc *river.Config, args T, every time.Duration, run func(context.Context) error) error {
	if run == nil {
		return nil
	}
	if err := river.AddWorkerSafely(workers, &tickWorker[T]{run: run}); err != nil {
		return err
	}
	rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return args, nil }, &river.PeriodicJobOpts{RunOnStart: true}))
	return nil
}

func addTicks(workers *river.Workers, rc *river.Config, t Ticks) error {
	every := t.ConsensusEvery
	if every <= 0 {
		every = time.Minute
	}
	for _, err := range []error{
		addTick(workers, rc, PoolTickArgs{}, time.Minute, t.Pools),
		addTick(workers, rc, EpochCloseArgs{}, time.Minute, t.Epochs),
		addTick(workers, rc, ConsensusCloseArgs{}, every, t.Consensus),
		addTick(workers, rc, PreferenceCloseArgs{}, time.Minute, t.Preferences),
		addTick(workers, rc, FreshTickArgs{}, time.Minute, t.Fresh),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
