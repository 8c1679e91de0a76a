//! TestState: one state run on its own, outside any execution.
//!
//! The engine checks the request as AWS does (the definition, the state, the mock, the
//! context), builds the context object AWS gives a tested state, obtains the state's work
//! (the mock, or a real call through the integrations, signed as the role a real execution
//! would assume), and has the pure interpreter evaluate the state
//! (`asl::interpreter::test_state`). Nothing is stored.

use asl::definition::{invalid_definition_message, Definition, StateKind, SINGLE_STATE_NAME};
use asl::error::names;
use asl::history::ErrorCause;
use asl::interpreter::test_state::{self, Mocked, TestCase, TestConfig, TestReport};
use asl::interpreter::{Dispatch, TaskOutcome};
use asl::task::{Pattern, Resource};
use serde_json::{json, Map, Value};

pub use crate::mock_schema::FieldValidation;
use crate::tasks::TaskReply;
use crate::{integrations, Engine, Error, Result};

/// A TestState request in the engine's terms.
#[derive(Debug, Clone, Default)]
pub struct TestStateRequest {
    pub region: String,
    /// The caller's account, in the context object's ARNs.
    pub account: String,
    pub definition: String,
    pub role_arn: Option<String>,
    pub input: Option<String>,
    pub reveal_secrets: bool,
    pub variables: Option<String>,
    /// The state to test in a full definition; `None` when `definition` is one state.
    pub state_name: Option<String>,
    pub mock: Option<TestMock>,
    pub context: Option<String>,
    pub config: TestStateConfiguration,
}

/// The mocked outcome of the state's work.
#[derive(Debug, Clone)]
pub struct TestMock {
    pub result: Option<String>,
    pub error_output: Option<ErrorCause>,
    pub field_validation: FieldValidation,
}

/// `stateConfiguration`.
#[derive(Debug, Clone, Default)]
pub struct TestStateConfiguration {
    pub retrier_retry_count: Option<u32>,
    pub error_caused_by_state: Option<String>,
    pub map_iteration_failure_count: Option<u64>,
    pub map_item_reader_data: Option<String>,
}

const STATES_WITHOUT_CONTAINERS: &str =
    "TestState API does not support Map or Parallel states. Supported state types include: [Task, Wait, Pass, Succeed, Fail, Choice]";

impl Engine {
    /// Runs one state as AWS's TestState does.
    pub async fn test_state(&self, req: TestStateRequest) -> Result<TestReport> {
        let definition = match &req.state_name {
            Some(_) => Definition::parse(&req.definition),
            None => Definition::parse_state(&req.definition),
        }
        .map_err(|d| Error::InvalidDefinition(invalid_definition_message(&req.definition, &d)))?;
        let name = req.state_name.as_deref().unwrap_or(SINGLE_STATE_NAME);
        let state = definition
            .find_state(name)
            .ok_or_else(|| Error::Validation("State not found in definition".into()))?;
        let kind = state.kind.event_prefix();
        let container = matches!(state.kind, StateKind::Parallel(_) | StateKind::Map(_));
        if let Some(mock) = &req.mock {
            if mock.result.is_some() && mock.error_output.is_some() {
                return Err(Error::Validation(
                    "A test mock should have only one of the following fields: [result, errorOutput].".into(),
                ));
            }
            if req.reveal_secrets {
                return Err(Error::Validation(
                    "TestState does not support RevealSecrets when a mock is specified.".into(),
                ));
            }
            if !container && !matches!(state.kind, StateKind::Task(_)) {
                return Err(Error::Validation(format!(
                    "State type '{kind}' is not supported when a mock is specified"
                )));
            }
        } else if req.config.map_iteration_failure_count.is_some() {
            return Err(Error::Validation(
                "TestState does not support MapIterationFailureCount when a mock is not specified."
                    .into(),
            ));
        } else if container {
            return Err(Error::InvalidDefinition(STATES_WITHOUT_CONTAINERS.into()));
        } else if matches!(state.kind, StateKind::Task(_)) && req.role_arn.is_none() {
            // Unmocked, the task is really called, as the role.
            return Err(Error::Validation(
                "RoleArn must be specified when testing a Task state".into(),
            ));
        }
        let mocked = match &req.mock {
            Some(mock) => Some(mocked(
                mock,
                &state.kind,
                req.config.map_iteration_failure_count,
            )?),
            None => None,
        };
        let input = parse_input(req.input.as_deref())?;
        let variables = match req.variables.as_deref() {
            None => Map::new(),
            Some(text) => match serde_json::from_str(text) {
                Ok(Value::Object(vars)) => vars,
                _ => {
                    return Err(Error::Validation(
                        "Variables must be a valid JSON object".into(),
                    ))
                }
            },
        };
        let context = match req.context.as_deref() {
            Some(text) => given_context(text, &state.kind)?,
            None => self.default_context(&req, state, &input),
        };
        let case = TestCase {
            definition: &definition,
            state,
            input,
            context,
            variables,
            config: TestConfig {
                retrier_retry_count: req.config.retrier_retry_count.unwrap_or(0),
                map_iteration_failure_count: req.config.map_iteration_failure_count,
            },
            now: self.now(),
            seed: rand::random(),
        };
        let outcome = match mocked {
            Some(m) => Some(m),
            None => match test_state::task_call(&case) {
                Some(call) => {
                    let execution_role = req.role_arn.as_deref();
                    Some(
                        self.perform_test_task(&req.region, execution_role, call)
                            .await,
                    )
                }
                None => None,
            },
        };
        // CPU work that can take seconds (a JSONata expression runs up to its time limit):
        // other tasks of this runtime's thread move elsewhere meanwhile.
        let evaluate = || test_state::run(&case, outcome);
        let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        Ok(match multi_thread {
            true => tokio::task::block_in_place(evaluate),
            false => evaluate(),
        })
    }

    /// The context object AWS gives a tested state: a made-up Express execution.
    fn default_context(
        &self,
        req: &TestStateRequest,
        state: &asl::definition::State,
        input: &Value,
    ) -> Value {
        let (region, account) = (&req.region, &req.account);
        let machine = uuid::Uuid::new_v4().to_string();
        let execution = uuid::Uuid::new_v4().to_string();
        let now = asl::timestamp::format_millis(self.now());
        let mut context = json!({
            "Execution": {
                "Id": format!("arn:aws:states:{region}:{account}:express:{machine}:{execution}"),
                "Input": input,
                "Name": execution,
                "RoleArn": req.role_arn,
                "StartTime": now,
            },
            "StateMachine": {
                "Id": format!("arn:aws:states:{region}:{account}:stateMachine:{machine}"),
                "Name": machine,
            },
            // AWS names the state `StateName` here even when it has another name.
            "State": { "Name": SINGLE_STATE_NAME, "EnteredTime": now },
        });
        if matches!(
            state.kind,
            StateKind::Task(_) | StateKind::Map(_) | StateKind::Parallel(_)
        ) {
            context["State"]["RetryCount"] = json!(req.config.retrier_retry_count.unwrap_or(0));
        }
        context
    }

    /// Performs a Task for real through the integrations that reach the network, as the
    /// role a real execution's call would assume: the Task's `Credentials`, else, under
    /// `--assume-execution-role`, the request's `roleArn`.
    async fn perform_test_task(
        &self,
        region: &str,
        execution_role: Option<&str>,
        call: test_state::TaskCall,
    ) -> Mocked {
        let role_arn = match call.role_arn {
            Ok(Some(role)) => Some(role),
            Ok(None) => execution_role
                .filter(|_| self.config().assume_execution_role)
                .map(str::to_owned),
            Err(ec) => return Mocked::Error(ec),
        };
        let dispatch = Dispatch {
            task_id: 0,
            state: String::new(),
            attempt: 0,
            token: String::new(),
            resource: call.resource.clone(),
            input: call.input,
            timeout_seconds: call.timeout_seconds,
            heartbeat_seconds: call.heartbeat_seconds,
            submitted: None,
            role_arn,
        };
        let reply = match &call.resource {
            Resource::Activity { .. } | Resource::MapRun(_) => {
                return runtime_error(
                    "TestState does not run activities; mock the result instead.".into(),
                )
            }
            Resource::Service {
                pattern: Pattern::WaitForTaskToken | Pattern::Sync | Pattern::Sync2,
                ..
            } => {
                return runtime_error(format!(
                    "TestState does not wait for '{}'; mock the result instead.",
                    call.resource.arn()
                ))
            }
            other => integrations::invoke(self, region, other, &dispatch).await,
        };
        match reply {
            TaskReply::Done(TaskOutcome::Succeeded(result)) => Mocked::Result(result),
            TaskReply::Done(TaskOutcome::Failed(ec) | TaskOutcome::TimedOut(ec)) => {
                Mocked::Error(ec)
            }
            TaskReply::Submitted(_) | TaskReply::Pending => {
                runtime_error("The task did not finish; mock the result instead.".into())
            }
        }
    }
}

fn runtime_error(cause: String) -> Mocked {
    Mocked::Error(ErrorCause::new(names::RUNTIME, cause))
}

/// The state input (`{}` when absent), as StartExecution reads an execution input.
fn parse_input(text: Option<&str>) -> Result<Value> {
    match text {
        None => Ok(json!({})),
        Some(t) => crate::executions::parse_execution_input(t),
    }
}

/// The request's mock as the outcome of the state's work, checked as AWS checks it (with the
/// Map iterations said to have failed).
fn mocked(mock: &TestMock, kind: &StateKind, failed_iterations: Option<u64>) -> Result<Mocked> {
    if let Some(ec) = &mock.error_output {
        return Ok(Mocked::Error(ec.clone()));
    }
    let text = mock.result.as_deref().unwrap_or("null");
    let result: Value = serde_json::from_str(text)
        .map_err(|_| Error::Validation("Mocked result must be valid JSON".into()))?;
    match kind {
        StateKind::Map(m) => {
            let writer = m
                .distributed
                .as_ref()
                .is_some_and(|d| d.result_writer.is_some());
            if writer && !result.is_object() {
                return Err(Error::Validation(
                    "Mocked result must be a JSON object.".into(),
                ));
            }
            let items = match result.as_array() {
                Some(items) => items.len() as u64,
                None if writer => u64::MAX,
                None => return Err(Error::Validation("Mocked result must be an array.".into())),
            };
            // One result per item: no more of them can have failed. [GUESS: AWS's wording was
            // not found; that it refuses the count is the report.]
            if failed_iterations.is_some_and(|failed| failed > items) {
                return Err(Error::Validation(
                    "The mapIterationFailureCount must not exceed the number of items in the mocked result.".into(),
                ));
            }
        }
        // AWS's wording, as recorded by LocalStack's parity test
        // (test_mock_result_array_size_mismatch_on_parallel_state).
        StateKind::Parallel(p) => match result.as_array() {
            None => return Err(Error::Validation("Mocked result must be an array.".into())),
            Some(results) if results.len() != p.branches.len() => {
                return Err(Error::Validation(
                    "Mocked result must contain the same number of items as number of Parallel branches.".into(),
                ))
            }
            Some(_) => {}
        },
        StateKind::Task(t) => {
            crate::mock_schema::check(&t.resource, &result, mock.field_validation)
                .map_err(Error::Validation)?;
        }
        _ => {}
    }
    Ok(Mocked::Result(result))
}

/// A context object given with the request: a JSON object, with `Task` only for the states
/// that have a task token or a job.
fn given_context(text: &str, kind: &StateKind) -> Result<Value> {
    let context: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(Error::Validation(
                "Invalid Context object provided: Context object must be a valid JSON object"
                    .into(),
            ))
        }
    };
    let waits = matches!(kind, StateKind::Task(t) if matches!(
        &t.resource,
        Resource::Service { pattern: Pattern::WaitForTaskToken | Pattern::Sync | Pattern::Sync2, .. }
    ));
    if context.get("Task").is_some() && !waits {
        return Err(Error::Validation(
            "Invalid Context object provided: Context object contains 'Task' when state is not a Task state with a '.sync' or '.waitForTaskToken' service integration pattern".into(),
        ));
    }
    Ok(context)
}
