//! TestState: one state evaluated on its own, with what each step of its data flow produced.
//!
//! AWS's `TestState` runs a single state against a given input and context and reports its
//! output, the next state, and the intermediate values of the input/output pipeline
//! (`afterInputPath`, `afterParameters`, `result`, ...). This module drives the interpreter's
//! own machinery over a scratch execution (paths, payload templates, JSONata, Choice rules,
//! Retry/Catch matching, the Catch output) and records those values on the way. Nothing here
//! waits, dispatches or writes history: a Task's result, or the results of a Map's iterations
//! or a Parallel's branches, come in as a [`Mocked`] outcome (the request's mock, or what the
//! engine got from really performing the task), and a retry is reported, not waited for.

use serde_json::{Map, Value};

use super::{Advance, Current, ExecutionInfo, Limits, Outcome, Run, Runtime};
use crate::definition::{
    Definition, MapState, Payload, QueryLanguage, ResultHandling, State, StateKind,
};
use crate::error::ErrorCause;
use crate::io;
use crate::jsonata::States;
use crate::task::{error_matches, Resource};
use crate::template::Scope;
use crate::Entropy;

/// The state under test and everything it is evaluated with.
pub struct TestCase<'a> {
    /// The definition the state belongs to (a single state is wrapped in one).
    pub definition: &'a Definition,
    pub state: &'a State,
    pub input: Value,
    /// The context object (`$$`, `$states.context`).
    pub context: Value,
    /// The workflow variables in scope.
    pub variables: Map<String, Value>,
    pub config: TestConfig,
    /// Epoch milliseconds.
    pub now: i64,
    /// Seeds `States.UUID`, `$random` and friends.
    pub seed: u64,
}

/// TestState's `stateConfiguration`: where a mocked Map or retried state stands.
#[derive(Debug, Clone, Default)]
pub struct TestConfig {
    /// Retries already made by the retrier that matches the mocked error.
    pub retrier_retry_count: u32,
    /// How many Map iterations failed.
    pub map_iteration_failure_count: Option<u64>,
}

/// What the state's work produced: a Task's result, a Map's or a Parallel's results, or the
/// error it failed with.
#[derive(Debug, Clone)]
pub enum Mocked {
    Result(Value),
    Error(ErrorCause),
}

/// TestState's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    Succeeded,
    Failed,
    /// A retrier matched the error and has attempts left.
    Retriable,
    /// A catcher matched the error.
    CaughtError,
}

impl TestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Succeeded => "SUCCEEDED",
            TestStatus::Failed => "FAILED",
            TestStatus::Retriable => "RETRIABLE",
            TestStatus::CaughtError => "CAUGHT_ERROR",
        }
    }
}

/// The intermediate values of the state's data flow (`inspectionData`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspection {
    pub input: Option<Value>,
    pub after_input_path: Option<Value>,
    pub after_parameters: Option<Value>,
    pub after_arguments: Option<Value>,
    pub result: Option<Value>,
    pub after_result_selector: Option<Value>,
    pub after_result_path: Option<Value>,
    pub after_items_path: Option<Value>,
    /// The variables after the state (given ones and assigned ones), when there are any.
    pub variables: Option<Value>,
    pub error_details: Option<ErrorDetails>,
    pub max_concurrency: Option<u64>,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
}

/// Which retrier or catcher handled the error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorDetails {
    pub catch_index: Option<usize>,
    pub retry_index: Option<usize>,
    pub retry_backoff_interval_seconds: Option<u64>,
}

/// What TestState answers.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub status: TestStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub next_state: Option<String>,
    pub inspection: Inspection,
}

/// What a Task state would dispatch if it really ran.
#[derive(Debug, Clone)]
pub struct TaskCall {
    pub resource: Resource,
    pub input: Value,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    /// The role the Task's `Credentials` name, rendered (the error when it cannot be).
    pub role_arn: Result<Option<String>, ErrorCause>,
}

/// How the state ended.
enum End {
    Succeeded {
        output: Value,
        next: Option<String>,
    },
    Failed(ErrorCause),
    Retriable(ErrorCause),
    Caught {
        output: Value,
        next: String,
        error: ErrorCause,
    },
}

/// The call a Task state makes, or `None` when the state is no Task or its input cannot be
/// prepared ([`run`] reports why).
pub fn task_call(case: &TestCase) -> Option<TaskCall> {
    let StateKind::Task(spec) = &case.state.kind else {
        return None;
    };
    with_run(case, |run| {
        let (input, timeout, heartbeat) = run
            .task_input(case.state, spec, &case.input, &case.context)
            .ok()?;
        let role_arn = run.task_role(case.state, spec, &case.input, &case.context);
        Some(TaskCall {
            resource: spec.resource.clone(),
            input,
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
            role_arn,
        })
    })
}

/// Evaluates the state. `outcome` is what its work produced (Task, Map, Parallel); other
/// states ignore it.
pub fn run(case: &TestCase, outcome: Option<Mocked>) -> TestReport {
    with_run(case, |run| {
        let mut ins = Inspection {
            input: Some(case.input.clone()),
            ..Inspection::default()
        };
        let end = match evaluate(run, case, outcome, &mut ins) {
            Ok(end) => end,
            Err(e) => End::Failed(ErrorCause {
                location: None,
                ..e
            }),
        };
        let mut variables = case.variables.clone();
        if matches!(end, End::Succeeded { .. } | End::Caught { .. }) {
            if let Some(assigned) = run.pending_assign.take() {
                variables.extend(assigned);
            }
        }
        if !variables.is_empty() {
            ins.variables = Some(Value::Object(variables));
        }
        let mut report = TestReport {
            status: TestStatus::Succeeded,
            output: None,
            error: None,
            cause: None,
            next_state: None,
            inspection: ins,
        };
        match end {
            End::Succeeded { output, next } => {
                report.output = Some(output);
                report.next_state = next;
            }
            End::Failed(ec) => {
                report.status = TestStatus::Failed;
                report.error = ec.error;
                report.cause = ec.cause;
            }
            End::Retriable(ec) => {
                report.status = TestStatus::Retriable;
                report.error = ec.error;
                report.cause = ec.cause;
            }
            End::Caught {
                output,
                next,
                error,
            } => {
                report.status = TestStatus::CaughtError;
                report.output = Some(output);
                report.next_state = Some(next);
                report.error = error.error;
                report.cause = error.cause;
            }
        }
        report
    })
}

/// Runs `f` on a scratch execution positioned on the state under test.
fn with_run<T>(case: &TestCase, f: impl FnOnce(&mut Run) -> T) -> T {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let execution = case.context.get("Execution");
    let machine = case.context.get("StateMachine");
    let info = ExecutionInfo {
        execution_arn: text(execution.and_then(|e| e.get("Id"))),
        name: text(execution.and_then(|e| e.get("Name"))),
        state_machine_arn: text(machine.and_then(|m| m.get("Id"))),
        state_machine_name: text(machine.and_then(|m| m.get("Name"))),
        role_arn: text(execution.and_then(|e| e.get("RoleArn"))),
        start_time: case.now,
        input: case.input.clone(),
        redrive_count: 0,
        redrive_time: None,
        input_text: case.input.to_string(),
        state_machine_version_arn: None,
        state_machine_alias_arn: None,
    };
    let mut rt = Runtime::new();
    rt.current = Some(Current::new(
        case.state.name.clone(),
        case.input.clone(),
        case.now,
    ));
    let mut entropy = Entropy::new(case.seed);
    let mut run = Run {
        def: case.definition,
        info: &info,
        rt: &mut rt,
        now: case.now,
        entropy: &mut entropy,
        limits: Limits::default(),
        out: Advance::default(),
        path: Vec::new(),
        budget: 1,
        vars: case.variables.clone(),
        pending_assign: None,
        context_override: Some(case.context.clone()),
        capped: false,
        ran: false,
    };
    f(&mut run)
}

fn evaluate(
    run: &mut Run,
    case: &TestCase,
    outcome: Option<Mocked>,
    ins: &mut Inspection,
) -> Result<End, ErrorCause> {
    let state = case.state;
    let raw = &case.input;
    let ctx = &case.context;
    let jsonpath = state.query_language == QueryLanguage::JsonPath;
    match &state.kind {
        StateKind::Pass {
            result,
            parameters,
            result_path,
        } if jsonpath => {
            let produced = match result {
                Some(r) => {
                    ins.result = Some(r.clone());
                    r.clone()
                }
                None => {
                    let effective = run.apply_path(&state.input_path, raw, ctx)?;
                    ins.after_input_path = Some(effective.clone());
                    let parameters = match parameters {
                        Some(t) => t.render(
                            &mut Scope::new(&effective, ctx, run.entropy).with_variables(&run.vars),
                        )?,
                        None => effective,
                    };
                    ins.after_parameters = Some(parameters.clone());
                    parameters
                }
            };
            ins.after_result_selector = Some(produced.clone());
            run.assign(
                state.assign.as_ref().and_then(Payload::path),
                &produced,
                ctx,
            )?;
            let combined = io::result_path(result_path, raw.clone(), produced)?;
            ins.after_result_path = Some(combined.clone());
            let output = run.apply_path(&state.output_path, &combined, ctx)?;
            Ok(End::Succeeded {
                output,
                next: state.next.clone(),
            })
        }
        StateKind::Task(spec) => {
            if jsonpath {
                ins.after_input_path = Some(run.apply_path(&state.input_path, raw, ctx)?);
            }
            let input = match run.task_input(state, spec, raw, ctx) {
                Ok((input, _, _)) => input,
                Err(e) => return query_error(run, case, &spec.handling, e, ins),
            };
            match state.query_language {
                QueryLanguage::JsonPath => ins.after_parameters = Some(input),
                QueryLanguage::Jsonata => ins.after_arguments = Some(input),
            }
            match outcome {
                Some(Mocked::Result(result)) => {
                    ins.result = Some(result.clone());
                    let end = exit_with(run, case, &spec.handling, result, ins);
                    match end {
                        Err(e) => query_error(run, case, &spec.handling, e, ins),
                        ok => ok,
                    }
                }
                Some(Mocked::Error(ec)) => handle_error(run, case, &spec.handling, ec, ins),
                None => Err(ErrorCause::runtime("The task produced no result.")),
            }
        }
        StateKind::Parallel(p) => match outcome {
            Some(Mocked::Result(result)) => {
                let end = exit_with(run, case, &p.handling, result, ins);
                match end {
                    Err(e) => query_error(run, case, &p.handling, e, ins),
                    ok => ok,
                }
            }
            Some(Mocked::Error(ec)) => handle_error(run, case, &p.handling, ec, ins),
            None => Err(ErrorCause::runtime(
                "The Parallel state has no mocked result.",
            )),
        },
        StateKind::Map(m) => {
            let items = map_items(run, case, m, ins)?;
            ins.max_concurrency = Some(run.max_concurrency(state, raw, ctx)?);
            let (count, percentage) = thresholds(run, case, m)?;
            ins.tolerated_failure_count = count;
            ins.tolerated_failure_percentage = percentage;
            let result = match outcome {
                Some(Mocked::Error(ec)) => return handle_error(run, case, &m.handling, ec, ins),
                Some(Mocked::Result(result)) => result,
                None => return Err(ErrorCause::runtime("The Map state has no mocked result.")),
            };
            // The failure count is checked against the thresholds the state sets; a Map
            // without any succeeds whatever the count (as AWS answers).
            let failed = case.config.map_iteration_failure_count.unwrap_or(0);
            let total = items
                .or_else(|| result.as_array().map(Vec::len))
                .unwrap_or(0);
            let limited = count.is_some() || percentage.is_some();
            if limited && super::tolerance_exceeded(failed, total as u64, count, percentage) {
                let ec = super::exceeded_tolerance();
                return handle_error(run, case, &m.handling, ec, ins);
            }
            let end = exit_with(run, case, &m.handling, result, ins);
            match end {
                Err(e) => query_error(run, case, &m.handling, e, ins),
                ok => ok,
            }
        }
        _ => {
            if jsonpath {
                ins.after_input_path = Some(run.apply_path(&state.input_path, raw, ctx)?);
            }
            match run.execute(state, raw)? {
                Outcome::Exit(output) => Ok(End::Succeeded {
                    output,
                    next: state.next.clone(),
                }),
                Outcome::Branch(next, output) => Ok(End::Succeeded {
                    output,
                    next: Some(next),
                }),
                Outcome::Fail(ec) => Ok(End::Failed(ec)),
                Outcome::Wait(_) => Ok(End::Succeeded {
                    output: run.wait_output(state, raw)?,
                    next: state.next.clone(),
                }),
                Outcome::Blocked | Outcome::Again | Outcome::TimedOut => Err(ErrorCause::runtime(
                    "The state cannot be tested on its own.",
                )),
            }
        }
    }
}

/// A result leaves the state: `ResultSelector`, `ResultPath` and `OutputPath` in JSONPath
/// (each step recorded), `Output` in JSONata.
fn exit_with(
    run: &mut Run,
    case: &TestCase,
    handling: &ResultHandling,
    result: Value,
    ins: &mut Inspection,
) -> Result<End, ErrorCause> {
    let state = case.state;
    let raw = &case.input;
    let ctx = &case.context;
    let next = state.next.clone();
    if state.query_language == QueryLanguage::Jsonata {
        let states = States {
            result: Some(&result),
            ..States::new(raw, ctx)
        };
        let assign = state.assign.as_ref().and_then(Payload::jsonata);
        let output = run.jsonata_exit(state, assign, state.output.as_ref(), states, &result)?;
        return Ok(End::Succeeded { output, next });
    }
    let selected = match &handling.result_selector {
        Some(t) => {
            t.render(&mut Scope::new(&result, ctx, run.entropy).with_variables(&run.vars))?
        }
        None => result,
    };
    ins.after_result_selector = Some(selected.clone());
    run.assign(
        state.assign.as_ref().and_then(Payload::path),
        &selected,
        ctx,
    )?;
    let combined = io::result_path(&handling.result_path, raw.clone(), selected)?;
    ins.after_result_path = Some(combined.clone());
    let output = run.apply_path(&state.output_path, &combined, ctx)?;
    Ok(End::Succeeded { output, next })
}

/// A `States.QueryEvaluationError` of a JSONata state goes to Retry and Catch like a task
/// error; anything else fails the state.
fn query_error(
    run: &mut Run,
    case: &TestCase,
    handling: &ResultHandling,
    e: ErrorCause,
    ins: &mut Inspection,
) -> Result<End, ErrorCause> {
    let catchable = case.state.query_language == QueryLanguage::Jsonata
        && e.is(crate::error::names::QUERY_EVALUATION_ERROR);
    if !catchable {
        return Err(e);
    }
    let ec = ErrorCause {
        location: None,
        ..e
    };
    handle_error(run, case, handling, ec, ins)
}

/// Retry (when the matching retrier has attempts left), Catch, or fail.
fn handle_error(
    run: &mut Run,
    case: &TestCase,
    handling: &ResultHandling,
    ec: ErrorCause,
    ins: &mut Inspection,
) -> Result<End, ErrorCause> {
    let ResultHandling { retry, catch, .. } = handling;
    let error = ec.error.clone().unwrap_or_default();
    let mut details = ErrorDetails::default();
    if let Some(i) = retry
        .iter()
        .position(|r| error_matches(&r.error_equals, &error))
    {
        details.retry_index = Some(i);
        let used = case.config.retrier_retry_count;
        if let Some(r) = retry.get(i).filter(|r| used < r.max_attempts) {
            details.retry_backoff_interval_seconds = Some(r.delay_seconds(used).round() as u64);
            ins.error_details = Some(details);
            return Ok(End::Retriable(ec));
        }
    }
    let catcher = catch
        .iter()
        .enumerate()
        .find(|(_, c)| error_matches(&c.error_equals, &error));
    if let Some((j, catcher)) = catcher {
        details.catch_index = Some(j);
        ins.error_details = Some(details);
        // The catcher's output (ResultPath or Output) may itself fail: that error fails the state.
        return match run.caught(case.state, catcher, &case.input, ec.clone())? {
            Outcome::Branch(next, output) => Ok(End::Caught {
                output,
                next,
                error: ec,
            }),
            _ => Ok(End::Failed(ec)),
        };
    }
    if details != ErrorDetails::default() {
        ins.error_details = Some(details);
    }
    Ok(End::Failed(ec))
}

/// The Map's items as the state would iterate them (`InputPath`, `ItemsPath` or `Items`),
/// recorded along the way; their number when known.
fn map_items(
    run: &mut Run,
    case: &TestCase,
    m: &MapState,
    ins: &mut Inspection,
) -> Result<Option<usize>, ErrorCause> {
    let state = case.state;
    let raw = &case.input;
    let ctx = &case.context;
    if state.query_language == QueryLanguage::Jsonata {
        let Some(t) = &m.items else {
            return Ok(raw.as_array().map(Vec::len));
        };
        let items = run.render(state, t, States::new(raw, ctx))?;
        return Ok(items.as_array().map(Vec::len));
    }
    let effective = run.apply_path(&state.input_path, raw, ctx)?;
    ins.after_input_path = Some(effective.clone());
    // Items read by an ItemReader are not in the input.
    if m.distributed
        .as_ref()
        .is_some_and(|d| d.item_reader.is_some())
    {
        return Ok(None);
    }
    let items = run.apply_path(&m.items_path, &effective, ctx);
    match items {
        Ok(items @ Value::Array(_)) => {
            let n = items.as_array().map(Vec::len);
            ins.after_items_path = Some(items);
            Ok(n)
        }
        _ => {
            let path = match &m.items_path {
                io::PathField::Path(p) => p.text().to_owned(),
                _ => "$".to_owned(),
            };
            // AWS names a context path without its first `$`.
            let path = path
                .strip_prefix("$$")
                .map_or(path.clone(), |p| format!("${p}"));
            Err(ErrorCause::runtime(format!(
                "Reference path \"{path}\" must point to array."
            )))
        }
    }
}

/// The Map's tolerated failure count and percentage, resolved as the Map Run resolves them.
fn thresholds(
    run: &mut Run,
    case: &TestCase,
    m: &MapState,
) -> Result<(Option<u64>, Option<f64>), ErrorCause> {
    let Some(d) = &m.distributed else {
        return Ok((None, None));
    };
    let (state, raw, ctx) = (case.state, &case.input, &case.context);
    let effective = run.apply_path(&state.input_path, raw, ctx)?;
    let (count, percentage) = run.thresholds(state, d, &effective, ctx)?;
    Ok((count.map(|n| n as u64), percentage))
}
