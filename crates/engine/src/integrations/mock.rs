//! Mocked integrations in the Step Functions Local MockConfigFile format.
//!
//! ```json
//! {
//!   "StateMachines": {
//!     "MyMachine": { "TestCases": { "HappyPath": { "LambdaState": "LambdaOk" } } }
//!   },
//!   "MockedResponses": {
//!     "LambdaOk": {
//!       "0": { "Throw": { "Error": "Lambda.TooManyRequestsException", "Cause": "slow down" } },
//!       "1-2": { "Return": { "StatusCode": 200, "Payload": { "ok": true } } }
//!     }
//!   }
//! }
//! ```
//!
//! An execution started on `stateMachineArn#HappyPath` runs its Task states through the test
//! case `HappyPath` of the state machine named in its ARN:
//! - A state the test case lists is never invoked. Its mocked response for the current
//!   invocation number is the task's outcome: `Return` is the task result as it is (no shape is
//!   enforced, as in Step Functions Local: a Lambda `Return` is what `lambda:invoke` would have
//!   answered, e.g. `{"StatusCode": 200, "Payload": ...}`), `Throw` fails the task with its
//!   `Error` and `Cause`, so `Retry` and `Catch` see it like a real failure.
//! - A state the test case does not list falls through to the real integration.
//! - `.waitForTaskToken` and `.sync` tasks do not wait: as in Step Functions Local a
//!   `TaskSubmitted` event records the mocked `Return`, and the task succeeds with it at once
//!   (the `Return` stands for the callback's `SendTaskSuccess` output). A `Throw` fails the task
//!   without a `TaskSubmitted` event.
//! - A mocked activity state gets its `ActivityStarted` event before the mocked outcome.
//! - The child executions of a Distributed Map run their parent's test case: the states of
//!   the item processor are looked up in it by name, counted per child execution.
//!
//! **Invocation numbers** count the invocations of one state in one execution, from 0: the
//! first attempt, each retry, and each later entry into the state (a loop) take the next
//! number, as Step Functions Local counts them. The count lives in memory, keyed by the
//! execution and the state (one small entry per mocked state, dropped once the execution has
//! ended). It is not durable: after a server restart a state's count resumes at the attempt
//! number of the task in flight (its retry count), which is exact for retries but forgets the
//! entries into the state before the restart. A task dispatched again for the same attempt
//! (recovery) keeps its number.
//!
//! **Failures.** Step Functions Local fails the execution when no mocked response covers an
//! invocation. Here the task fails with `States.Runtime` (which `States.ALL` does not match, so
//! the execution fails unless a catcher names `States.Runtime`), with a cause naming the test
//! case, the state and the invocation. The same error reports a test case the configuration
//! does not have for the state machine (when the execution reaches its first Task state).
//! [`validate`] checks the file's structure when the server starts.

use asl::error::names;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use asl::history::ErrorCause;
use asl::interpreter::{Dispatch, Signal, TaskOutcome};
use asl::task::{Pattern, Resource};
use serde_json::{Map, Value};

use crate::arn::Arn;
use crate::tasks::{failed, TaskReply};
use crate::Engine;

const STATE_MACHINES: &str = "StateMachines";
const MOCKED_RESPONSES: &str = "MockedResponses";
const TEST_CASES: &str = "TestCases";

/// Entries in the invocation counter beyond which ended executions are swept out.
const SWEEP_ABOVE: usize = 1024;

/// Checks a MockConfigFile's structure: the message names the first problem found, with the
/// path to it.
pub fn validate(config: &Value) -> Result<(), String> {
    let top = config
        .as_object()
        .ok_or("the mock configuration must be a JSON object")?;
    for key in top.keys() {
        if key != STATE_MACHINES && key != MOCKED_RESPONSES {
            return Err(format!(
                "unknown top-level field '{key}' (expected '{STATE_MACHINES}' and '{MOCKED_RESPONSES}')"
            ));
        }
    }
    let responses = object_at(top, MOCKED_RESPONSES, MOCKED_RESPONSES)?;
    for (name, response) in responses.into_iter().flatten() {
        parse_response(name, response)?;
    }
    for (machine, value) in object_at(top, STATE_MACHINES, STATE_MACHINES)?
        .into_iter()
        .flatten()
    {
        let path = format!("{STATE_MACHINES}.{machine}");
        let obj = value
            .as_object()
            .ok_or_else(|| format!("{path} must be an object with a '{TEST_CASES}' field"))?;
        if let Some(key) = obj.keys().find(|k| *k != TEST_CASES) {
            return Err(format!(
                "{path}: unknown field '{key}' (expected '{TEST_CASES}')"
            ));
        }
        for (case, states) in object_at(obj, TEST_CASES, &format!("{path}.{TEST_CASES}"))?
            .into_iter()
            .flatten()
        {
            let path = format!("{path}.{TEST_CASES}.{case}");
            let states = states.as_object().ok_or_else(|| {
                format!("{path} must be an object of state name → mocked response name")
            })?;
            for (state, response) in states {
                let Some(response) = response.as_str() else {
                    return Err(format!(
                        "{path}.{state} must be the name of a mocked response (a string)"
                    ));
                };
                if !responses.is_some_and(|r| r.contains_key(response)) {
                    return Err(format!(
                        "{path}.{state} names the mocked response '{response}', which {MOCKED_RESPONSES} does not define"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The optional object field `key` of `obj`; an error if it is there but not an object.
fn object_at<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(format!("{path} must be an object")),
    }
}

/// What one invocation of a mocked state answers.
#[derive(Debug, Clone, PartialEq)]
enum Mocked<'a> {
    Return(&'a Value),
    Throw {
        error: &'a str,
        cause: Option<&'a str>,
    },
}

/// One field of a mocked response: the inclusive invocation range and its answer.
#[derive(Debug, Clone, PartialEq)]
struct Entry<'a> {
    first: u32,
    last: u32,
    mocked: Mocked<'a>,
}

/// Parses a mocked response object (`{"0": {...}, "1-2": {...}}`), sorted by range, with no
/// overlapping ranges.
fn parse_response<'a>(name: &str, value: &'a Value) -> Result<Vec<Entry<'a>>, String> {
    let path = format!("{MOCKED_RESPONSES}.{name}");
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{path} must be an object of invocation number → response"))?;
    if obj.is_empty() {
        return Err(format!("{path} has no responses"));
    }
    let mut entries = Vec::with_capacity(obj.len());
    for (key, entry) in obj {
        let path = format!("{path}.{key}");
        let (first, last) = parse_range(key).ok_or_else(|| {
            format!("{path}: invocation keys are a number (\"0\") or an inclusive range (\"1-2\")")
        })?;
        entries.push(Entry {
            first,
            last,
            mocked: parse_mocked(&path, entry)?,
        });
    }
    entries.sort_by_key(|e| e.first);
    for pair in entries.windows(2) {
        if pair[1].first <= pair[0].last {
            return Err(format!(
                "{path}: the invocations {} overlap",
                describe_overlap(&pair[0], &pair[1])
            ));
        }
    }
    Ok(entries)
}

fn describe_overlap(a: &Entry, b: &Entry) -> String {
    format!("{} and {}", range_text(a), range_text(b))
}

fn range_text(e: &Entry) -> String {
    if e.first == e.last {
        format!("\"{}\"", e.first)
    } else {
        format!("\"{}-{}\"", e.first, e.last)
    }
}

/// `"3"` → (3, 3); `"1-2"` → (1, 2). Digits only; the range must not run backwards.
fn parse_range(key: &str) -> Option<(u32, u32)> {
    let number = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match key.split_once('-') {
        None => number(key).map(|n| (n, n)),
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

fn parse_mocked<'a>(path: &str, entry: &'a Value) -> Result<Mocked<'a>, String> {
    let obj = entry
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| format!("{path} must contain a single field named 'Return' or 'Throw'"))?;
    if let Some(value) = obj.get("Return") {
        return Ok(Mocked::Return(value));
    }
    let Some(throw) = obj.get("Throw") else {
        return Err(format!(
            "{path} must contain a single field named 'Return' or 'Throw'"
        ));
    };
    let throw = throw
        .as_object()
        .ok_or_else(|| format!("{path}.Throw must be an object with 'Error' and 'Cause'"))?;
    if let Some(key) = throw.keys().find(|k| *k != "Error" && *k != "Cause") {
        return Err(format!(
            "{path}.Throw: unknown field '{key}' (expected 'Error' and 'Cause')"
        ));
    }
    let error = throw
        .get("Error")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{path}.Throw.Error must be a string"))?;
    let cause = match throw.get("Cause") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(format!("{path}.Throw.Cause must be a string")),
    };
    Ok(Mocked::Throw { error, cause })
}

/// How the configuration treats one state of one execution.
#[derive(Debug, PartialEq)]
enum Lookup<'a> {
    /// The test case does not list the state: the real integration runs.
    Unmocked,
    /// The state's mocked response, by name.
    Mocked {
        response: &'a str,
        entries: Vec<Entry<'a>>,
    },
    /// The configuration cannot answer: the task fails with this cause.
    Broken(String),
}

fn lookup<'a>(config: &'a Value, machine: &str, case: &str, state: &str) -> Lookup<'a> {
    let Some(states) = config
        .get(STATE_MACHINES)
        .and_then(|m| m.get(machine))
        .and_then(|m| m.get(TEST_CASES))
        .and_then(|c| c.get(case))
    else {
        return Lookup::Broken(format!(
            "The mock configuration has no test case '{case}' for the state machine '{machine}'."
        ));
    };
    let Some(name) = states.get(state) else {
        return Lookup::Unmocked;
    };
    let Some(name) = name.as_str() else {
        return Lookup::Broken(format!(
            "The test case '{case}' maps the state '{state}' to {name}, not to the name of a mocked response."
        ));
    };
    let Some(response) = config.get(MOCKED_RESPONSES).and_then(|r| r.get(name)) else {
        return Lookup::Broken(format!(
            "The test case '{case}' maps the state '{state}' to the mocked response '{name}', which the mock configuration does not define."
        ));
    };
    match parse_response(name, response) {
        Ok(entries) => Lookup::Mocked {
            response: name,
            entries,
        },
        Err(e) => Lookup::Broken(format!("Invalid mock configuration: {e}.")),
    }
}

/// Invocation counts: (engine, execution ARN, state) → count.
type Counters = HashMap<(usize, String, String), Count>;

#[derive(Debug, Clone, Copy)]
struct Count {
    /// The number the next new task takes.
    next: u32,
    /// The last task numbered, and its number (a re-dispatched task keeps it).
    task_id: u64,
    number: u32,
}

fn counters() -> &'static Mutex<Counters> {
    static COUNTERS: OnceLock<Mutex<Counters>> = OnceLock::new();
    COUNTERS.get_or_init(Default::default)
}

/// The invocation number of this dispatch: the next number for the state in this execution,
/// never below the attempt's retry count (after a restart the count starts again from it).
fn invocation(counters: &mut Counters, key: (usize, String, String), d: &Dispatch) -> u32 {
    let count = counters.entry(key).or_insert(Count {
        next: 0,
        task_id: u64::MAX,
        number: 0,
    });
    if count.task_id == d.task_id {
        return count.number;
    }
    let number = count.next.max(d.attempt);
    *count = Count {
        next: number.saturating_add(1),
        task_id: d.task_id,
        number,
    };
    number
}

/// Drops the counts of executions that have ended (swept only once the map has grown).
async fn sweep(engine: &Engine) {
    let arns: Vec<(usize, String)> = {
        let c = crate::lock::lock(counters());
        if c.len() <= SWEEP_ABOVE {
            return;
        }
        c.keys().map(|(e, a, _)| (*e, a.clone())).collect()
    };
    let me = engine_id(engine);
    let mut ended = Vec::new();
    for (id, arn) in arns {
        if id == me && engine.inner.runner.test_case(&arn).await.is_none() {
            ended.push(arn);
        }
    }
    crate::lock::lock(counters()).retain(|(id, arn, _), _| *id != me || !ended.contains(arn));
}

fn engine_id(engine: &Engine) -> usize {
    std::sync::Arc::as_ptr(&engine.inner) as usize
}

/// The mocked reply for this task, if the execution runs a test case that mocks it.
pub async fn answer(engine: &Engine, execution_arn: &str, d: &Dispatch) -> Option<TaskReply> {
    let config = engine.config().mock_config.as_ref()?;
    let case = engine.inner.runner.test_case(execution_arn).await?;
    // A Map Run child's ARN names `Machine/MapRunLabel`: it runs its parent's test case.
    let machine = Arn::parse(execution_arn)
        .and_then(|a| a.parts.into_iter().next())
        .map(|m| m.split('/').next().unwrap_or_default().to_owned());
    let Some(machine) = machine else {
        return Some(failed(
            names::RUNTIME,
            format!("The execution ARN '{execution_arn}' names no state machine to look up in the mock configuration."),
        ));
    };
    let (response, entries) = match lookup(config, &machine, &case, &d.state) {
        Lookup::Unmocked => return None,
        Lookup::Broken(cause) => return Some(failed(names::RUNTIME, cause)),
        Lookup::Mocked { response, entries } => (response, entries),
    };
    sweep(engine).await;
    let key = (engine_id(engine), execution_arn.to_owned(), d.state.clone());
    let number = invocation(&mut crate::lock::lock(counters()), key, d);
    let Some(entry) = entries
        .iter()
        .find(|e| e.first <= number && number <= e.last)
    else {
        let covered: Vec<String> = entries.iter().map(range_text).collect();
        return Some(failed(
            names::RUNTIME,
            format!(
                "The mocked response '{response}' of the test case '{case}' has no response for invocation {number} of the state '{}' (it covers {}).",
                d.state,
                covered.join(", ")
            ),
        ));
    };
    Some(reply(engine, execution_arn, d, &entry.mocked).await)
}

/// Turns a mocked answer into the task's outcome, with the events a real task would have.
async fn reply(
    engine: &Engine,
    execution_arn: &str,
    d: &Dispatch,
    mocked: &Mocked<'_>,
) -> TaskReply {
    let before = match (&d.resource, mocked) {
        (Resource::Activity { .. }, _) => Some(Signal::TaskStarted {
            task_id: d.task_id,
            worker_name: None,
        }),
        (
            Resource::Service {
                pattern: Pattern::WaitForTaskToken | Pattern::Sync | Pattern::Sync2,
                ..
            },
            Mocked::Return(output),
        ) => Some(Signal::TaskSubmitted {
            task_id: d.task_id,
            output: (*output).clone(),
        }),
        _ => None,
    };
    if let Some(signal) = before {
        let recorded = engine
            .inner
            .runner
            .signal_until_recorded(execution_arn, signal);
        if let Err(e) = recorded.await {
            tracing::warn!(%execution_arn, error = %e, "mocked task event not recorded");
        }
    }
    match mocked {
        Mocked::Return(output) => TaskReply::Done(TaskOutcome::Succeeded((*output).clone())),
        Mocked::Throw { error, cause } => TaskReply::Done(TaskOutcome::Failed(ErrorCause {
            error: Some((*error).to_owned()),
            cause: cause.map(str::to_owned),
            location: None,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Value {
        json!({
            "StateMachines": {
                "M": { "TestCases": { "T": { "A": "R", "B": "Missing" } } }
            },
            "MockedResponses": {
                "R": {
                    "0": { "Throw": { "Error": "E", "Cause": "C" } },
                    "1-2": { "Return": { "ok": 1 } }
                }
            }
        })
    }

    #[test]
    fn ranges() {
        for (key, want) in [
            ("0", Some((0, 0))),
            ("12", Some((12, 12))),
            ("1-2", Some((1, 2))),
            ("3-3", Some((3, 3))),
            ("2-1", None),
            ("-1", None),
            ("1-", None),
            ("+1", None),
            (" 1", None),
            ("1-2-3", None),
            ("a", None),
            ("", None),
            ("99999999999", None),
        ] {
            assert_eq!(parse_range(key), want, "{key:?}");
        }
    }

    #[test]
    fn validation_messages() {
        let ok = json!({
            "StateMachines": { "M": { "TestCases": { "T": { "A": "R" } } } },
            "MockedResponses": { "R": { "0": { "Return": 5 } } }
        });
        assert_eq!(validate(&ok), Ok(()));
        assert_eq!(validate(&json!({})), Ok(()));
        for (config, needle) in [
            (json!([]), "must be a JSON object"),
            (
                json!({ "MockedResponse": {} }),
                "unknown top-level field 'MockedResponse'",
            ),
            (json!({ "StateMachines": { "M": {} } }), ""),
            (
                json!({ "StateMachines": { "M": 1 } }),
                "StateMachines.M must be an object",
            ),
            (
                json!({ "StateMachines": { "M": { "Cases": {} } } }),
                "unknown field 'Cases'",
            ),
            (
                json!({ "StateMachines": { "M": { "TestCases": { "T": { "A": "R" } } } } }),
                "StateMachines.M.TestCases.T.A names the mocked response 'R'",
            ),
            (
                json!({ "StateMachines": { "M": { "TestCases": { "T": { "A": 3 } } } } }),
                "must be the name of a mocked response",
            ),
            (
                json!({ "MockedResponses": { "R": {} } }),
                "MockedResponses.R has no responses",
            ),
            (
                json!({ "MockedResponses": { "R": { "x": { "Return": 1 } } } }),
                "MockedResponses.R.x: invocation keys",
            ),
            (
                json!({ "MockedResponses": { "R": { "0": {} } } }),
                "single field named 'Return' or 'Throw'",
            ),
            (
                json!({ "MockedResponses": { "R": { "0": { "Return": 1, "Throw": {} } } } }),
                "single field named 'Return' or 'Throw'",
            ),
            (
                json!({ "MockedResponses": { "R": { "0": { "Throw": { "Cause": "c" } } } } }),
                "Throw.Error must be a string",
            ),
            (
                json!({ "MockedResponses": { "R": { "0": { "Throw": { "Error": "e", "Cause": 1 } } } } }),
                "Throw.Cause must be a string",
            ),
            (
                json!({ "MockedResponses": { "R": { "0-2": { "Return": 1 }, "2": { "Return": 2 } } } }),
                "the invocations \"0-2\" and \"2\" overlap",
            ),
        ] {
            match validate(&config) {
                Ok(()) => assert!(
                    needle.is_empty(),
                    "{config} was accepted; wanted {needle:?}"
                ),
                Err(e) => assert!(
                    !needle.is_empty() && e.contains(needle),
                    "{config}: {e:?} does not contain {needle:?}"
                ),
            }
        }
    }

    #[test]
    fn lookups() {
        let c = config();
        assert_eq!(lookup(&c, "M", "T", "Other"), Lookup::Unmocked);
        let Lookup::Mocked { response, entries } = lookup(&c, "M", "T", "A") else {
            panic!("A is mocked");
        };
        assert_eq!(response, "R");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].mocked,
            Mocked::Throw {
                error: "E",
                cause: Some("C")
            }
        );
        assert_eq!((entries[1].first, entries[1].last), (1, 2));
        for (machine, case, state, needle) in [
            (
                "M",
                "Nope",
                "A",
                "no test case 'Nope' for the state machine 'M'",
            ),
            (
                "Other",
                "T",
                "A",
                "no test case 'T' for the state machine 'Other'",
            ),
            ("M", "T", "B", "the mocked response 'Missing', which"),
        ] {
            match lookup(&c, machine, case, state) {
                Lookup::Broken(cause) => assert!(cause.contains(needle), "{cause}"),
                other => panic!("{machine}/{case}/{state}: {other:?}"),
            }
        }
    }

    fn dispatch(task_id: u64, attempt: u32) -> Dispatch {
        Dispatch {
            task_id,
            state: "A".into(),
            attempt,
            token: String::new(),
            resource: Resource::Lambda {
                arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            },
            input: Value::Null,
            timeout_seconds: None,
            heartbeat_seconds: None,
            submitted: None,
            role_arn: None,
        }
    }

    #[test]
    fn invocation_numbers() {
        let mut c = Counters::new();
        let key = || (1, "arn".to_owned(), "A".to_owned());
        // First visit: attempt 0, retries 1 and 2; a re-dispatch keeps its number.
        assert_eq!(invocation(&mut c, key(), &dispatch(5, 0)), 0);
        assert_eq!(invocation(&mut c, key(), &dispatch(7, 1)), 1);
        assert_eq!(invocation(&mut c, key(), &dispatch(7, 1)), 1);
        assert_eq!(invocation(&mut c, key(), &dispatch(9, 2)), 2);
        // The state entered again (a loop): the count goes on.
        assert_eq!(invocation(&mut c, key(), &dispatch(20, 0)), 3);
        // Another state and another execution count on their own.
        assert_eq!(
            invocation(&mut c, (1, "arn".into(), "B".into()), &dispatch(21, 0)),
            0
        );
        assert_eq!(
            invocation(&mut c, (1, "arn2".into(), "A".into()), &dispatch(5, 0)),
            0
        );
        // After a restart (empty counts) a retry resumes at its attempt number.
        let mut fresh = Counters::new();
        assert_eq!(invocation(&mut fresh, key(), &dispatch(30, 2)), 2);
        assert_eq!(invocation(&mut fresh, key(), &dispatch(31, 3)), 3);
    }
}
