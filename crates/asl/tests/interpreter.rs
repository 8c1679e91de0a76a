//! The interpreter driven by canned scripts: every file in `fixtures/interpreter/` is a
//! definition, an input and a script of signals, and the history the script produces.
//!
//! A fixture reads:
//!
//! ```text
//! One line or more saying what the fixture shows.
//! --- definition
//! {"StartAt": "Work", "States": {...}}
//! --- input
//! {"a": 1}
//! --- run
//! > start
//!   1   0 ExecutionStarted {"a":1}
//!   ...
//!   @0 wake 30000, dispatch Work#3
//! > fail Work States.TaskFailed it broke
//!   ...
//! ```
//!
//! An optional `--- states per call` section after the input sets the interpreter's state
//! budget for each call (the engine's is 256), to show what happens when a call yields.
//!
//! Lines starting with `>` are the script; everything else in `run` is what the harness
//! writes: the events of each step (`id previous type detail`), then the clock, the wake-up
//! time the interpreter asked for, the tasks it dispatched and whether the signal was stale.
//! `UPDATE_EXPECT=1 cargo test -p stepwise-asl --test interpreter` rewrites the output parts.
//!
//! Commands (a task is named by its state, `Work` or `Work[1]` for the second pending
//! attempt of that state in task-id order, or by its id, `Work#3`):
//! - `start`; `wake` (a Wake now); `fire` (the clock jumps to the asked wake-up time, then a
//!   Wake); `after MS` (the clock moves on, no signal);
//! - `succeed TASK JSON`, `fail TASK [ERROR [CAUSE...]]`, `started TASK [WORKER]`,
//!   `heartbeat TASK`, `submitted TASK JSON`, `maprun TASK LENGTH`;
//! - `stop [ERROR [CAUSE...]]`, `redrive`;
//! - `together CMD; CMD; ...`: the signals of those commands applied as one batch
//!   (`advance_batch`), followed by what became of each.
//!
//! Time is the harness's: no sleeps. The runtime stays in memory: its stored form is the
//! engine's (`engine::checkpoint::stored`, tested there). Entropy is seeded, so jitter is the
//! same on every run.

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use asl::definition::Definition;
use asl::history::{ErrorCause, EventDetails, HistoryEvent};
use asl::interpreter::{
    advance, advance_batch, Advance, ExecutionInfo, Limits, Runtime, Signal, TaskOutcome, TaskRun,
};
use asl::Entropy;
use serde_json::Value;

const EXECUTION_ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:sm:run";

/// One fixture being run.
struct Harness {
    def: Definition,
    info: ExecutionInfo,
    rt: Runtime,
    entropy: Entropy,
    limits: Limits,
    /// The manual clock, epoch ms.
    now: i64,
    /// The wake-up time the last step asked for.
    wake_at: Option<i64>,
    out: String,
}

impl Harness {
    fn new(definition: &str, input: &str) -> Harness {
        let def = Definition::parse(definition)
            .unwrap_or_else(|d| panic!("the definition is invalid: {d:?}"));
        let input_text = input.trim().to_owned();
        let input = serde_json::from_str(&input_text).expect("the input is JSON");
        let info = ExecutionInfo {
            execution_arn: EXECUTION_ARN.into(),
            name: "run".into(),
            state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:sm".into(),
            state_machine_name: "sm".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            start_time: 0,
            input,
            input_text,
            ..ExecutionInfo::default()
        };
        Harness {
            def,
            info,
            rt: Runtime::new(),
            entropy: Entropy::new(7),
            limits: Limits::default(),
            now: 0,
            wake_at: None,
            out: String::new(),
        }
    }

    /// Runs one script command and writes what it produced.
    fn command(&mut self, line: &str) {
        if let Some(signals) = line.strip_prefix("together ") {
            let signals = signals.split("; ").filter_map(|s| self.signal(s)).collect();
            let (step, received) = advance_batch(
                &self.def,
                &self.info,
                &mut self.rt,
                signals,
                self.now,
                &mut self.entropy,
                self.limits,
            );
            self.record(&step);
            let _ = writeln!(self.out, "  received {received:?}");
            return;
        }
        let Some(signal) = self.signal(line) else {
            return;
        };
        let step = advance(
            &self.def,
            &self.info,
            &mut self.rt,
            signal,
            self.now,
            &mut self.entropy,
            self.limits,
        );
        self.record(&step);
    }

    /// The signal of a script command (none for `after`, which only moves the clock).
    fn signal(&mut self, line: &str) -> Option<Signal> {
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        Some(match verb {
            "start" => Signal::Start,
            "wake" => Signal::Wake,
            "fire" => {
                self.now = self
                    .wake_at
                    .expect("`fire`: the interpreter asked for no wake-up");
                Signal::Wake
            }
            "after" => {
                self.now += rest.parse::<i64>().expect("`after MS`");
                return None;
            }
            "stop" => {
                let (error, cause) = error_cause(rest);
                Signal::Stop { error, cause }
            }
            "redrive" => {
                self.info.redrive_count += 1;
                self.info.redrive_time = Some(self.now);
                Signal::Redrive {
                    redrive_count: self.info.redrive_count,
                    recorded: false,
                }
            }
            _ => self.task_signal(verb, rest),
        })
    }

    /// A signal about a task: `VERB TASK [ARGS]`.
    fn task_signal(&self, verb: &str, rest: &str) -> Signal {
        let (task, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let task_id = self.task_id(task);
        match verb {
            "succeed" => Signal::TaskFinished {
                task_id,
                outcome: TaskOutcome::Succeeded(json(args)),
            },
            "fail" => {
                let (error, cause) = error_cause(args);
                Signal::TaskFinished {
                    task_id,
                    outcome: TaskOutcome::Failed(ErrorCause {
                        error,
                        cause,
                        location: None,
                    }),
                }
            }
            "started" => Signal::TaskStarted {
                task_id,
                worker_name: Some(args).filter(|w| !w.is_empty()).map(str::to_owned),
            },
            "heartbeat" => Signal::TaskHeartbeat { task_id },
            "submitted" => Signal::TaskSubmitted {
                task_id,
                output: json(args),
            },
            "maprun" => Signal::MapRunStarted {
                task_id,
                map_run_arn: format!("{EXECUTION_ARN}:maprun"),
                length: args.parse().expect("`maprun TASK LENGTH`"),
                redrive_count: None,
            },
            other => panic!("unknown command `{other}`"),
        }
    }

    /// The task id of `State` or `State[i]` among the attempts waiting for an outcome, or
    /// of `State#ID` (any attempt, even one that ended: a stale signal).
    fn task_id(&self, name: &str) -> u64 {
        if let Some((_, id)) = name.split_once('#') {
            return id.parse().expect("`State#ID`");
        }
        let (state, index) = match name.split_once('[') {
            Some((state, i)) => (state, i.trim_end_matches(']').parse().expect("`State[i]`")),
            None => (name, 0),
        };
        let mut ids: Vec<u64> = self
            .rt
            .pending_tasks()
            .into_iter()
            .filter(|t: &&TaskRun| t.dispatch.as_ref().is_some_and(|d| d.state == state))
            .map(|t| t.id)
            .collect();
        ids.sort_unstable();
        *ids.get(index)
            .unwrap_or_else(|| panic!("no pending task {name} (pending: {ids:?})"))
    }

    fn record(&mut self, step: &Advance) {
        for event in &step.events {
            let _ = writeln!(self.out, "  {}", render(event));
        }
        self.wake_at = step.wake_at;
        let mut summary = format!("@{}", self.now);
        if let Some(at) = step.wake_at {
            let _ = write!(summary, " wake {at}");
        }
        if step.yielded {
            summary.push_str(" yielded");
        }
        for d in &step.dispatches {
            let _ = write!(summary, ", dispatch {}#{} {}", d.state, d.task_id, d.input);
            if let Some(role) = &d.role_arn {
                let _ = write!(summary, " as {role}");
            }
        }
        if step.stale {
            summary.push_str(", stale");
        }
        let _ = writeln!(self.out, "  {summary} [{:?}]", self.rt.status);
    }
}

/// `ERROR CAUSE...`, each optional.
fn error_cause(text: &str) -> (Option<String>, Option<String>) {
    let mut parts = text.splitn(2, ' ').filter(|s| !s.is_empty());
    (
        parts.next().map(str::to_owned),
        parts.next().map(str::to_owned),
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON: {text}: {e}"))
}

/// One event as a line: id, previous id, type and the essential detail.
fn render(event: &HistoryEvent) -> String {
    let error = |e: &ErrorCause| {
        format!(
            "{}: {}",
            e.error.as_deref().unwrap_or("-"),
            e.cause.as_deref().unwrap_or("-")
        )
    };
    let detail = match &event.details {
        EventDetails::ExecutionStarted { input, .. } => input.clone(),
        EventDetails::ExecutionSucceeded { output } => output.clone(),
        EventDetails::ExecutionFailed(e)
        | EventDetails::ExecutionAborted(e)
        | EventDetails::ExecutionTimedOut(e)
        | EventDetails::MapRunFailed(e)
        | EventDetails::TaskFailed { error: e, .. }
        | EventDetails::TaskTimedOut { error: e, .. } => error(e),
        EventDetails::ExecutionRedriven { redrive_count } => format!("count {redrive_count}"),
        EventDetails::StateEntered { name, input, .. } => format!("{name} {input}"),
        EventDetails::StateExited {
            name,
            output,
            assigned_variables,
            ..
        } => match assigned_variables {
            Some(vars) => format!("{name} {output} assigned {}", Value::Object(vars.clone())),
            None => format!("{name} {output}"),
        },
        EventDetails::ContainerStarted { length, .. } => {
            length.map(|n| format!("length {n}")).unwrap_or_default()
        }
        EventDetails::ContainerSucceeded { .. }
        | EventDetails::ContainerFailed { .. }
        | EventDetails::StateAborted { .. }
        | EventDetails::MapRunSucceeded
        | EventDetails::MapRunAborted => String::new(),
        EventDetails::MapIteration { name, index, .. } => format!("{name}[{index}]"),
        EventDetails::MapRunStarted { map_run_arn } => map_run_arn.clone(),
        EventDetails::MapRunRedriven { redrive_count, .. } => format!("count {redrive_count}"),
        EventDetails::TaskScheduled {
            task,
            input,
            timeout,
            heartbeat,
            credentials,
            ..
        } => {
            let mut s = format!("{} {input}", task.resource);
            if let Some(t) = timeout {
                let _ = write!(s, " timeout {t}");
            }
            if let Some(h) = heartbeat {
                let _ = write!(s, " heartbeat {h}");
            }
            if let Some(c) = credentials {
                let _ = write!(s, " credentials {c}");
            }
            s
        }
        EventDetails::TaskStarted { worker_name, .. } => worker_name.clone().unwrap_or_default(),
        EventDetails::TaskSubmitted { output, .. } | EventDetails::TaskSucceeded { output, .. } => {
            output.clone()
        }
        EventDetails::EvaluationFailed {
            state,
            error,
            cause,
            location,
        } => format!(
            "{state} {error} at {}: {cause}",
            location.as_deref().unwrap_or("-")
        ),
    };
    let line = format!(
        "{:>3} {:>3} {} {detail}",
        event.id,
        event.previous_event_id,
        event.details.event_type()
    );
    line.trim_end().to_owned()
}

/// A fixture with its output parts made anew.
fn run_fixture(text: &str) -> String {
    let (head, run) = text
        .split_once("--- run\n")
        .expect("a fixture has a `--- run` section");
    let (_, rest) = head
        .split_once("--- definition\n")
        .expect("a fixture has a `--- definition` section");
    let (definition, input) = rest
        .split_once("--- input\n")
        .expect("a fixture has an `--- input` section");
    let (input, budget) = match input.split_once("--- states per call\n") {
        Some((input, n)) => (
            input,
            Some(n.trim().parse().expect("states per call: a number")),
        ),
        None => (input, None),
    };
    let mut harness = Harness::new(definition, input);
    if let Some(n) = budget {
        harness.limits.states_per_call = n;
    }
    let mut out = format!("{head}--- run\n");
    let mut commands = run.lines().filter_map(|l| l.strip_prefix("> "));
    while let Some(command) = commands.next() {
        let _ = writeln!(out, "> {command}");
        harness.out.clear();
        let ran = panic::catch_unwind(AssertUnwindSafe(|| harness.command(command.trim())));
        out.push_str(&harness.out);
        if let Err(e) = ran {
            // A script that cannot go on (no such task, bad JSON): said in the output, so
            // the fixture shows where.
            let message = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            let _ = writeln!(out, "  ! {message}");
            // The rest of the script is kept as it is, not run.
            for command in commands.by_ref() {
                let _ = writeln!(out, "> {command}");
            }
        }
    }
    out
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interpreter");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn interpreter_fixtures() {
    let paths = fixtures();
    assert!(!paths.is_empty(), "no fixtures found");
    let mut failed = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("the fixture reads");
        let expect = expect_test::expect_file![&path];
        let checked = panic::catch_unwind(|| expect.assert_eq(&run_fixture(&text)));
        if checked.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "fixtures that differ: {failed:#?}");
}

/// `TaskSubmitted` keeps the job's answer in the task's dispatch, which the checkpoint stores:
/// a re-dispatch after a restart follows that job instead of starting another.
#[test]
fn a_submission_is_kept_with_its_task() {
    let definition = r#"{"StartAt": "Job", "States": {"Job": {"Type": "Task",
        "Resource": "arn:aws:states:::athena:startQueryExecution.sync", "End": true}}}"#;
    let mut h = Harness::new(definition, "{}");
    h.command("start");
    let dispatch = |h: &Harness| {
        let pending = h.rt.pending_tasks();
        pending
            .first()
            .and_then(|t| t.dispatch.clone())
            .expect("a dispatched task")
    };
    assert_eq!(dispatch(&h).submitted, None);
    h.command(r#"submitted Job {"QueryExecutionId": "q-1"}"#);
    assert_eq!(
        dispatch(&h).submitted,
        Some(serde_json::json!({"QueryExecutionId": "q-1"}))
    );
}
