//! Task states: scheduling an attempt, its timeouts and heartbeats, what comes back, and
//! Retry/Catch after a task error. Task tokens name an attempt (`crate::task_token`).

use serde_json::Value;

use crate::definition::{Payload, State, StateKind, TaskState};
use crate::error::{names, ErrorCause};
use crate::history::{EventDetails, TaskFamily, TaskRef};
use crate::jsonata::States;
use crate::task::{error_matches, Resource, Seconds};
use crate::task_token::task_token;
use crate::template::Scope;

use super::{select, Dispatch, Outcome, Run, TaskOutcome, TaskPhase, TaskRun, MAX_PAYLOAD_BYTES};

impl<'a> Run<'a> {
    pub(super) fn current_task_ref(&self) -> Option<TaskRef> {
        let name = &self.cur()?.state;
        match &self.state_def(name)?.kind {
            StateKind::Task(t) => Some(task_ref(&t.resource)),
            _ => None,
        }
    }

    /// Drives a Task state: schedules an attempt, waits, or processes what came back.
    pub(super) fn task(
        &mut self,
        state: &State,
        spec: &TaskState,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, ErrorCause> {
        let Some(mut run) = self.cur().and_then(|c| c.task.clone()) else {
            let run = TaskRun {
                id: 0,
                phase: TaskPhase::Scheduled,
                retries: vec![0; spec.handling.retry.len()],
                retry_count: 0,
                timeout_at: None,
                heartbeat_seconds: None,
                heartbeat_at: None,
                dispatch: None,
                outcome: None,
                last_event: None,
            };
            return self.schedule(state, spec, run, raw, context);
        };
        if let Some(outcome) = run.outcome.take() {
            let task = task_ref(&spec.resource);
            let prev = run.last_event.unwrap_or_else(|| self.last());
            let ec = match outcome {
                TaskOutcome::Succeeded(result) => {
                    let output = result.to_string();
                    if output.len() > MAX_PAYLOAD_BYTES {
                        let ec = result_too_large(&spec.resource);
                        let error = ec.clone();
                        run.last_event =
                            Some(self.push(prev, EventDetails::TaskFailed { task, error }));
                        return self.task_error(state, spec, run, raw, ec);
                    }
                    run.last_event =
                        Some(self.push(prev, EventDetails::TaskSucceeded { task, output }));
                    self.set_task(None);
                    let handling = &spec.handling;
                    return match self.exit_with_result(state, handling, raw, context, result)? {
                        Ok(output) => Ok(Outcome::Exit(output)),
                        Err(ec) => self.task_error(state, spec, run, raw, ec),
                    };
                }
                TaskOutcome::Failed(ec) => {
                    run.last_event = Some(self.push(
                        prev,
                        EventDetails::TaskFailed {
                            task,
                            error: ec.clone(),
                        },
                    ));
                    ec
                }
                TaskOutcome::TimedOut(ec) => {
                    run.last_event = Some(self.push(
                        prev,
                        EventDetails::TaskTimedOut {
                            task,
                            error: ec.clone(),
                        },
                    ));
                    ec
                }
            };
            return self.task_error(state, spec, run, raw, ec);
        }
        match run.phase {
            TaskPhase::Retrying { until } if until <= self.now => {
                self.schedule(state, spec, run, raw, context)
            }
            TaskPhase::Retrying { .. } => Ok(Outcome::Blocked),
            _ => {
                let error = if run.timeout_at.is_some_and(|t| t <= self.now) {
                    names::TIMEOUT
                } else if run.heartbeat_at.is_some_and(|t| t <= self.now) {
                    // A service integration's `.waitForTaskToken` that misses its heartbeat
                    // times out with `States.Timeout` on AWS (three recordings, 2024).
                    match spec.resource {
                        Resource::Service { .. } => names::TIMEOUT,
                        _ => names::HEARTBEAT_TIMEOUT,
                    }
                } else {
                    return Ok(Outcome::Blocked);
                };
                let ec = ErrorCause {
                    error: Some(error.into()),
                    ..ErrorCause::default()
                };
                run.outcome = Some(TaskOutcome::TimedOut(ec));
                self.set_task(Some(run));
                Ok(Outcome::Again)
            }
        }
    }

    /// Schedules an attempt: the `…Scheduled` (and, but for activities, `…Started`) events
    /// and a dispatch for the engine to perform.
    pub(super) fn schedule(
        &mut self,
        state: &State,
        spec: &TaskState,
        mut run: TaskRun,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, ErrorCause> {
        let prepared =
            self.task_input(state, spec, raw, context)
                .and_then(|(input, timeout, heartbeat)| {
                    let role = self.task_role(state, spec, raw, context)?;
                    Ok((input, timeout, heartbeat, role))
                });
        let (input, timeout, heartbeat, role_arn) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                return match self.query_error(state, e.clone()) {
                    Some(ec) => self.task_error(state, spec, run, raw, ec),
                    None => Err(e),
                }
            }
        };
        let task = task_ref(&spec.resource);
        let region = self
            .info
            .execution_arn
            .split(':')
            .nth(3)
            .unwrap_or_default()
            .to_owned();
        // A retry follows its failure, in its lane; a first attempt its `…StateEntered`.
        let prev = run.last_event.unwrap_or_else(|| self.last());
        let id = self.push(
            prev,
            EventDetails::TaskScheduled {
                task: task.clone(),
                region,
                input: input.to_string(),
                timeout,
                heartbeat,
                credentials: role_arn
                    .as_ref()
                    .map(|r| serde_json::json!({ "RoleArn": r }).to_string()),
            },
        );
        run.id = id;
        run.last_event = Some(id);
        run.timeout_at = timeout.map(|t| self.now.saturating_add(self.scaled(t)));
        run.heartbeat_seconds = heartbeat;
        run.heartbeat_at = None;
        run.phase = TaskPhase::Scheduled;
        if !matches!(spec.resource, Resource::Activity { .. }) {
            run.last_event = Some(self.push(
                id,
                EventDetails::TaskStarted {
                    task,
                    worker_name: None,
                },
            ));
            run.phase = TaskPhase::Started;
            run.heartbeat_at = heartbeat.map(|h| self.now.saturating_add(self.scaled(h)));
        }
        let dispatch = Dispatch {
            task_id: id,
            state: state.name.clone(),
            attempt: run.retry_count,
            token: task_token(&self.limits.token_key, &self.info.execution_arn, id),
            resource: spec.resource.clone(),
            input,
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
            submitted: None,
            role_arn,
        };
        self.out.dispatches.push(dispatch.clone());
        run.dispatch = Some(dispatch);
        self.set_task(Some(run));
        Ok(Outcome::Blocked)
    }

    /// What an attempt is given: its input (`Parameters` or `Arguments`) and its timeouts.
    pub(super) fn task_input(
        &mut self,
        state: &State,
        spec: &TaskState,
        raw: &Value,
        context: &Value,
    ) -> Result<(Value, Option<u64>, Option<u64>), ErrorCause> {
        let effective = self.apply_path(&state.input_path, raw, context)?;
        let input = match &spec.parameters {
            Some(Payload::Path(t)) => t.render(
                &mut Scope::new(&effective, context, self.entropy).with_variables(&self.vars),
            )?,
            Some(Payload::Jsonata(t)) => self.render(state, t, States::new(raw, context))?,
            None => effective,
        };
        let timeout = self.seconds(state, &spec.timeout, "TimeoutSeconds", raw, context)?;
        let heartbeat = self.seconds(state, &spec.heartbeat, "HeartbeatSeconds", raw, context)?;
        Ok((input, timeout, heartbeat))
    }

    /// The role the Task's `Credentials` name, rendered like its parameters (a literal
    /// `RoleArn`, `RoleArn.$` with a path or an intrinsic, or JSONata).
    pub(super) fn task_role(
        &mut self,
        state: &State,
        spec: &TaskState,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<String>, ErrorCause> {
        let rendered = match &spec.credentials {
            None => return Ok(None),
            Some(Payload::Path(t)) => {
                let effective = self.apply_path(&state.input_path, raw, context)?;
                t.render(
                    &mut Scope::new(&effective, context, self.entropy).with_variables(&self.vars),
                )?
            }
            Some(Payload::Jsonata(t)) => self.render(state, t, States::new(raw, context))?,
        };
        match rendered.get("RoleArn") {
            Some(Value::String(role)) if !role.is_empty() => Ok(Some(role.clone())),
            other => Err(ErrorCause::runtime(format!(
                "The Credentials field's RoleArn must be a non-empty string, not {}.",
                other.unwrap_or(&Value::Null)
            ))),
        }
    }

    /// Retries, catches or fails after a task error.
    pub(super) fn task_error(
        &mut self,
        state: &State,
        spec: &TaskState,
        mut run: TaskRun,
        raw: &Value,
        ec: ErrorCause,
    ) -> Result<Outcome, ErrorCause> {
        let error = ec.error.clone().unwrap_or_default();
        // A task's own result that is too large is a task failure: unlike the terminal
        // `States.DataLimitExceeded` of a state's output, `States.ALL` matches it (AWS records
        // it caught).
        let result_limit = error == names::DATA_LIMIT_EXCEEDED
            && ec.cause == result_too_large(&spec.resource).cause;
        let matches = |list: &[String]| {
            error_matches(list, &error) || (result_limit && list.iter().any(|e| e == names::ALL))
        };
        let retrier = spec
            .handling
            .retry
            .iter()
            .position(|r| matches(&r.error_equals));
        if let Some((i, r)) = retrier.map(|i| (i, &spec.handling.retry[i])) {
            let used = run.retries.get(i).copied().unwrap_or(0);
            if used < r.max_attempts {
                let mut delay = r.delay_seconds(used);
                if r.full_jitter {
                    delay *= self.entropy.next_f64();
                }
                let delay_ms = (delay * 1000.0 * self.limits.wait_time_scale) as i64;
                if let Some(slot) = run.retries.get_mut(i) {
                    *slot += 1;
                }
                run.retry_count += 1;
                run.phase = TaskPhase::Retrying {
                    until: self.now.saturating_add(delay_ms),
                };
                run.dispatch = None;
                self.set_task(Some(run));
                return Ok(if delay_ms <= 0 {
                    Outcome::Again
                } else {
                    Outcome::Blocked
                });
            }
        }
        self.set_task(None);
        match spec
            .handling
            .catch
            .iter()
            .find(|c| matches(&c.error_equals))
        {
            Some(c) => self.caught(state, c, raw, ec),
            None => Ok(Outcome::Fail(ec)),
        }
    }

    pub(super) fn set_task(&mut self, run: Option<TaskRun>) {
        if let Some(c) = self.cur_mut() {
            c.task = run;
        }
    }

    /// Resolves `TimeoutSeconds` or `HeartbeatSeconds` (`field`), or its `…Path` form.
    pub(super) fn seconds(
        &mut self,
        state: &State,
        spec: &Option<Seconds>,
        field: &str,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<u64>, ErrorCause> {
        match spec {
            None => Ok(None),
            Some(Seconds::Fixed(n)) => Ok(Some(*n)),
            Some(Seconds::Jsonata(t)) => {
                let states = States::new(raw, context);
                let n = self.jsonata_integer(state, t, field, states, (1, 99_999_999))?;
                Ok(Some(n as u64))
            }
            Some(Seconds::Path(p)) => match select(p, raw, context, &self.vars) {
                Some(v) if v.as_u64().is_some_and(|n| n > 0) => Ok(v.as_u64()),
                Some(v) => Err(ErrorCause::runtime(format!(
                    "The {field}Path field refers to value \"{v}\" which is not a valid positive integer."
                ))),
                // AWS words this like an InputPath that selects nothing.
                None => Err(ErrorCause::runtime(format!(
                    "Invalid path '{}' : No results for path: {}",
                    p.text(),
                    p.normalized()
                ))),
            },
        }
    }
}

/// How the history names a task's resource.
/// The failure of a task whose result is larger than a payload may be: AWS names the Lambda
/// function's ARN, or the integration's service (`'lambda'` for `lambda:invoke`).
fn result_too_large(resource: &Resource) -> ErrorCause {
    let name = match resource {
        Resource::Service { service, .. } => service.as_str(),
        other => other.arn(),
    };
    ErrorCause::new(
        names::DATA_LIMIT_EXCEEDED,
        format!("The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."),
    )
}

pub(super) fn task_ref(resource: &Resource) -> TaskRef {
    match resource {
        Resource::Activity { arn } => TaskRef {
            family: TaskFamily::Activity,
            resource: arn.clone(),
            resource_type: None,
        },
        Resource::Lambda { arn } => TaskRef {
            family: TaskFamily::LambdaFunction,
            resource: arn.clone(),
            resource_type: None,
        },
        Resource::Service {
            service, action, ..
        } => TaskRef {
            family: TaskFamily::Task,
            resource: action.clone(),
            resource_type: Some(service.clone()),
        },
        Resource::MapRun(_) => TaskRef {
            family: TaskFamily::Task,
            resource: "mapRun".into(),
            resource_type: Some("states".into()),
        },
    }
}
