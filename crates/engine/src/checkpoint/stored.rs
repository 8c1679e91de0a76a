//! The stored checkpoint's own types: the durable twin of every interpreter type a checkpoint
//! holds, with the serde shape of format 3 ([`FORMAT`](super::FORMAT)). The interpreter's types
//! carry no serde; they are converted from and to these by hand, so renaming an `asl` field
//! changes nothing on disk, and changing a type here is a new format (bump `FORMAT`, add an
//! `UPGRADES` step).
//!
//! Writing happens on every transition, so a stored value borrows from memory ([`Cow`]
//! fields, built by `view`) instead of copying it; a read produces owned values that move into
//! the interpreter's types. Every conversion destructures its source without `..`: a field
//! added on either side does not compile until it is stored (or decided not to be).

use std::borrow::Cow;

use asl::error::ErrorCause;
use asl::interpreter::{
    Container, Current, Dispatch, ExecutionInfo, Lane, LaneStatus, MapRunSpec, Runtime, S3Call,
    Status, TaskOutcome, TaskPhase, TaskRun,
};
use asl::task::{Pattern, Resource};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::runner::ParentLink;

/// What a stored text holds: the execution row's `runtime` column.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredCheckpoint<'a> {
    /// The stored format ([`FORMAT`](super::FORMAT) when written; absent, so 0, in the oldest).
    #[serde(default)]
    pub format: u32,
    pub info: StoredInfo<'a>,
    pub runtime: StoredRuntime<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Cow<'a, ParentLink>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case: Option<Cow<'a, str>>,
}

/// [`ExecutionInfo`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredInfo<'a> {
    pub execution_arn: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub state_machine_arn: Cow<'a, str>,
    pub state_machine_name: Cow<'a, str>,
    pub role_arn: Cow<'a, str>,
    pub start_time: i64,
    /// `null` in the execution row, which leaves it to the record.
    pub input: Cow<'a, Value>,
    pub redrive_count: u32,
    pub redrive_time: Option<i64>,
    /// Empty in the execution row, as `input`.
    #[serde(default)]
    pub input_text: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_version_arn: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_alias_arn: Option<Cow<'a, str>>,
}

/// [`Runtime`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredRuntime<'a> {
    pub status: StoredStatus,
    pub last_event_id: u64,
    pub current: Option<StoredCurrent<'a>>,
    pub deadline: Option<i64>,
    pub output: Option<Cow<'a, str>>,
    pub error: Option<Cow<'a, str>>,
    pub cause: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<u64>,
    #[serde(default, skip_serializing_if = "no_variables")]
    pub variables: Cow<'a, Map<String, Value>>,
}

/// [`Status`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) enum StoredStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

/// [`Current`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredCurrent<'a> {
    pub state: Cow<'a, str>,
    pub input: Cow<'a, Value>,
    pub entered_event_id: Option<u64>,
    #[serde(default)]
    pub entered_after: u64,
    pub entered_time: i64,
    pub wait_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<StoredTask<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<StoredContainer<'a>>>,
    #[serde(default, skip_serializing_if = "none")]
    pub container_retries: Cow<'a, [u32]>,
    #[serde(default, skip_serializing_if = "none")]
    pub left: Cow<'a, [u64]>,
}

/// [`Container`] as stored, with the count of the lanes kept in rows of their own.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredContainer<'a> {
    /// Empty when the lanes are in rows (`detached`).
    pub lanes: Vec<StoredLane<'a>>,
    pub started: bool,
    #[serde(default)]
    pub max_concurrency: u64,
    /// How many lanes have rows of their own (the container's lanes are kept apart); 0 while
    /// `lanes` holds them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub detached: usize,
}

/// [`Lane`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredLane<'a> {
    pub status: StoredLaneStatus,
    pub input: Cow<'a, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<StoredCurrent<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Cow<'a, Value>>,
    #[serde(default, skip_serializing_if = "no_variables")]
    pub variables: Cow<'a, Map<String, Value>>,
}

/// [`LaneStatus`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) enum StoredLaneStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Aborted,
}

/// [`TaskRun`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredTask<'a> {
    pub id: u64,
    pub phase: StoredPhase,
    pub retries: Cow<'a, [u32]>,
    pub retry_count: u32,
    pub timeout_at: Option<i64>,
    pub heartbeat_seconds: Option<u64>,
    pub heartbeat_at: Option<i64>,
    pub dispatch: Option<StoredDispatch<'a>>,
    pub outcome: Option<StoredOutcome<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<u64>,
}

/// [`TaskPhase`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) enum StoredPhase {
    Scheduled,
    Started,
    Retrying { until: i64 },
}

/// [`TaskOutcome`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredOutcome<'a> {
    Succeeded(Cow<'a, Value>),
    Failed(StoredFailure<'a>),
    TimedOut(StoredFailure<'a>),
}

/// [`ErrorCause`] as stored in a task outcome.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredFailure<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Cow<'a, str>>,
}

/// [`Dispatch`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredDispatch<'a> {
    pub task_id: u64,
    pub state: Cow<'a, str>,
    pub attempt: u32,
    pub token: Cow<'a, str>,
    pub resource: StoredResource<'a>,
    pub input: Cow<'a, Value>,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted: Option<Cow<'a, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<Cow<'a, str>>,
}

/// [`Resource`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) enum StoredResource<'a> {
    Activity {
        arn: Cow<'a, str>,
    },
    Lambda {
        arn: Cow<'a, str>,
    },
    Service {
        arn: Cow<'a, str>,
        service: Cow<'a, str>,
        action: Cow<'a, str>,
        pattern: StoredPattern,
    },
    MapRun(Box<StoredMapRunSpec<'a>>),
}

/// [`Pattern`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) enum StoredPattern {
    RequestResponse,
    Sync,
    Sync2,
    WaitForTaskToken,
}

/// [`MapRunSpec`] as stored (in a checkpoint's dispatch, and in the Map Run's record).
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredMapRunSpec<'a> {
    pub label: Option<Cow<'a, str>>,
    pub express: bool,
    pub definition: Cow<'a, str>,
    pub items: Option<Cow<'a, [Value]>>,
    pub reader: Option<StoredS3Call<'a>>,
    pub item_selector: Option<Cow<'a, Value>>,
    pub selector_input: Cow<'a, Value>,
    pub context: Cow<'a, Value>,
    pub variables: Cow<'a, Map<String, Value>>,
    pub batcher: Option<Cow<'a, Value>>,
    pub writer: Option<StoredS3Call<'a>>,
    pub max_concurrency: u64,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
    #[serde(default)]
    pub redrive: u32,
    #[serde(default)]
    pub jsonata: bool,
    #[serde(default)]
    pub now: i64,
}

/// [`S3Call`] as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredS3Call<'a> {
    pub resource: Cow<'a, str>,
    pub arguments: Cow<'a, Value>,
    pub config: Option<Cow<'a, Value>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Whether a stored list is empty (`Cow` fields, borrowed or owned).
fn none<T>(items: &impl std::ops::Deref<Target = [T]>) -> bool {
    items.is_empty()
}

fn no_variables(variables: &impl std::ops::Deref<Target = Map<String, Value>>) -> bool {
    variables.is_empty()
}

/// A stored lane whose container kept its lanes in rows that were not put back.
#[derive(Debug)]
pub(crate) struct LanesMissing;

/// Borrows `s` (the helpers below serve every stored twin, `stored_event` too).
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

pub(crate) fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(Cow::Borrowed)
}

pub(crate) fn owned(s: Cow<'_, str>) -> String {
    s.into_owned()
}

pub(crate) fn opt_owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

impl<'a> StoredInfo<'a> {
    /// `info` as stored; without its input (`with_input` false) as the execution row keeps it.
    pub fn view(info: &'a ExecutionInfo, with_input: bool) -> StoredInfo<'a> {
        let ExecutionInfo {
            execution_arn,
            name,
            state_machine_arn,
            state_machine_name,
            role_arn,
            start_time,
            input,
            redrive_count,
            redrive_time,
            input_text,
            state_machine_version_arn,
            state_machine_alias_arn,
        } = info;
        let (input, input_text) = match with_input {
            true => (Cow::Borrowed(input), text(input_text)),
            false => (Cow::Owned(Value::Null), text("")),
        };
        StoredInfo {
            execution_arn: text(execution_arn),
            name: text(name),
            state_machine_arn: text(state_machine_arn),
            state_machine_name: text(state_machine_name),
            role_arn: text(role_arn),
            start_time: *start_time,
            input,
            redrive_count: *redrive_count,
            redrive_time: *redrive_time,
            input_text,
            state_machine_version_arn: opt_text(state_machine_version_arn),
            state_machine_alias_arn: opt_text(state_machine_alias_arn),
        }
    }
}

impl From<StoredInfo<'_>> for ExecutionInfo {
    fn from(stored: StoredInfo<'_>) -> ExecutionInfo {
        let StoredInfo {
            execution_arn,
            name,
            state_machine_arn,
            state_machine_name,
            role_arn,
            start_time,
            input,
            redrive_count,
            redrive_time,
            input_text,
            state_machine_version_arn,
            state_machine_alias_arn,
        } = stored;
        ExecutionInfo {
            execution_arn: owned(execution_arn),
            name: owned(name),
            state_machine_arn: owned(state_machine_arn),
            state_machine_name: owned(state_machine_name),
            role_arn: owned(role_arn),
            start_time,
            input: input.into_owned(),
            redrive_count,
            redrive_time,
            input_text: owned(input_text),
            state_machine_version_arn: opt_owned(state_machine_version_arn),
            state_machine_alias_arn: opt_owned(state_machine_alias_arn),
        }
    }
}

impl<'a> StoredRuntime<'a> {
    /// `runtime` as stored, the lanes of containers of more than `inline` lanes left out
    /// (they are stored in rows of their own).
    pub fn view(runtime: &'a Runtime, inline: usize) -> StoredRuntime<'a> {
        let Runtime {
            status,
            last_event_id,
            current,
            deadline,
            output,
            error,
            cause,
            chain,
            variables,
        } = runtime;
        StoredRuntime {
            status: (*status).into(),
            last_event_id: *last_event_id,
            current: current.as_ref().map(|c| StoredCurrent::view(c, inline)),
            deadline: *deadline,
            output: opt_text(output),
            error: opt_text(error),
            cause: opt_text(cause),
            chain: *chain,
            variables: Cow::Borrowed(variables),
        }
    }
}

impl TryFrom<StoredRuntime<'_>> for Runtime {
    type Error = LanesMissing;

    fn try_from(stored: StoredRuntime<'_>) -> Result<Runtime, LanesMissing> {
        let StoredRuntime {
            status,
            last_event_id,
            current,
            deadline,
            output,
            error,
            cause,
            chain,
            variables,
        } = stored;
        Ok(Runtime {
            status: status.into(),
            last_event_id,
            current: current.map(Current::try_from).transpose()?,
            deadline,
            output: opt_owned(output),
            error: opt_owned(error),
            cause: opt_owned(cause),
            chain,
            variables: variables.into_owned(),
        })
    }
}

/// Maps a pair of field-less enums both ways, variant for variant.
macro_rules! twin_enum {
    ($asl:ident, $stored:ident, $($variant:ident),+) => {
        impl From<$asl> for $stored {
            fn from(value: $asl) -> $stored {
                match value {
                    $($asl::$variant => $stored::$variant,)+
                }
            }
        }

        impl From<$stored> for $asl {
            fn from(value: $stored) -> $asl {
                match value {
                    $($stored::$variant => $asl::$variant,)+
                }
            }
        }
    };
}
pub(crate) use twin_enum;

twin_enum!(
    Status,
    StoredStatus,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted
);
twin_enum!(
    LaneStatus,
    StoredLaneStatus,
    Pending,
    Running,
    Succeeded,
    Failed,
    Aborted
);
twin_enum!(
    Pattern,
    StoredPattern,
    RequestResponse,
    Sync,
    Sync2,
    WaitForTaskToken
);

impl<'a> StoredCurrent<'a> {
    /// `current` as stored (see [`StoredRuntime::view`] for `inline`).
    pub fn view(current: &'a Current, inline: usize) -> StoredCurrent<'a> {
        let Current {
            state,
            input,
            entered_event_id,
            entered_after,
            entered_time,
            wait_until,
            task,
            container,
            container_retries,
            left,
        } = current;
        StoredCurrent {
            state: text(state),
            input: Cow::Borrowed(input),
            entered_event_id: *entered_event_id,
            entered_after: *entered_after,
            entered_time: *entered_time,
            wait_until: *wait_until,
            task: task.as_ref().map(StoredTask::from),
            container: container
                .as_ref()
                .map(|c| Box::new(StoredContainer::view(c, inline))),
            container_retries: Cow::Borrowed(container_retries),
            left: Cow::Borrowed(left),
        }
    }
}

impl TryFrom<StoredCurrent<'_>> for Current {
    type Error = LanesMissing;

    fn try_from(stored: StoredCurrent<'_>) -> Result<Current, LanesMissing> {
        let StoredCurrent {
            state,
            input,
            entered_event_id,
            entered_after,
            entered_time,
            wait_until,
            task,
            container,
            container_retries,
            left,
        } = stored;
        Ok(Current {
            state: owned(state),
            input: input.into_owned(),
            entered_event_id,
            entered_after,
            entered_time,
            wait_until,
            task: task.map(TaskRun::from),
            container: match container {
                Some(c) => Some(Box::new(Container::try_from(*c)?)),
                None => None,
            },
            container_retries: container_retries.into_owned(),
            left: left.into_owned(),
        })
    }
}

impl<'a> StoredContainer<'a> {
    /// `container` as stored: its lanes, or only their count when there are more than
    /// `inline`.
    pub fn view(container: &'a Container, inline: usize) -> StoredContainer<'a> {
        let Container {
            lanes,
            started,
            max_concurrency,
        } = container;
        let (lanes, detached) = match lanes.len() > inline {
            true => (Vec::new(), lanes.len()),
            false => (
                lanes.iter().map(|l| StoredLane::view(l, inline)).collect(),
                0,
            ),
        };
        StoredContainer {
            lanes,
            started: *started,
            max_concurrency: *max_concurrency,
            detached,
        }
    }
}

impl TryFrom<StoredContainer<'_>> for Container {
    type Error = LanesMissing;

    fn try_from(stored: StoredContainer<'_>) -> Result<Container, LanesMissing> {
        let StoredContainer {
            lanes,
            started,
            max_concurrency,
            detached,
        } = stored;
        if detached > 0 {
            return Err(LanesMissing);
        }
        Ok(Container {
            lanes: lanes
                .into_iter()
                .map(Lane::try_from)
                .collect::<Result<_, _>>()?,
            started,
            max_concurrency,
        })
    }
}

impl<'a> StoredLane<'a> {
    /// `lane` as stored (see [`StoredRuntime::view`] for `inline`).
    pub fn view(lane: &'a Lane, inline: usize) -> StoredLane<'a> {
        let Lane {
            status,
            input,
            current,
            output,
            variables,
        } = lane;
        StoredLane {
            status: (*status).into(),
            input: Cow::Borrowed(input),
            current: current.as_ref().map(|c| StoredCurrent::view(c, inline)),
            output: output.as_ref().map(Cow::Borrowed),
            variables: Cow::Borrowed(variables),
        }
    }
}

impl TryFrom<StoredLane<'_>> for Lane {
    type Error = LanesMissing;

    fn try_from(stored: StoredLane<'_>) -> Result<Lane, LanesMissing> {
        let StoredLane {
            status,
            input,
            current,
            output,
            variables,
        } = stored;
        Ok(Lane {
            status: status.into(),
            input: input.into_owned(),
            current: current.map(Current::try_from).transpose()?,
            output: output.map(Cow::into_owned),
            variables: variables.into_owned(),
        })
    }
}

impl<'a> From<&'a TaskRun> for StoredTask<'a> {
    fn from(task: &'a TaskRun) -> StoredTask<'a> {
        let TaskRun {
            id,
            phase,
            retries,
            retry_count,
            timeout_at,
            heartbeat_seconds,
            heartbeat_at,
            dispatch,
            outcome,
            last_event,
        } = task;
        StoredTask {
            id: *id,
            phase: match phase {
                TaskPhase::Scheduled => StoredPhase::Scheduled,
                TaskPhase::Started => StoredPhase::Started,
                TaskPhase::Retrying { until } => StoredPhase::Retrying { until: *until },
            },
            retries: Cow::Borrowed(retries),
            retry_count: *retry_count,
            timeout_at: *timeout_at,
            heartbeat_seconds: *heartbeat_seconds,
            heartbeat_at: *heartbeat_at,
            dispatch: dispatch.as_ref().map(StoredDispatch::from),
            outcome: outcome.as_ref().map(|o| match o {
                TaskOutcome::Succeeded(v) => StoredOutcome::Succeeded(Cow::Borrowed(v)),
                TaskOutcome::Failed(e) => StoredOutcome::Failed(e.into()),
                TaskOutcome::TimedOut(e) => StoredOutcome::TimedOut(e.into()),
            }),
            last_event: *last_event,
        }
    }
}

impl From<StoredTask<'_>> for TaskRun {
    fn from(stored: StoredTask<'_>) -> TaskRun {
        let StoredTask {
            id,
            phase,
            retries,
            retry_count,
            timeout_at,
            heartbeat_seconds,
            heartbeat_at,
            dispatch,
            outcome,
            last_event,
        } = stored;
        TaskRun {
            id,
            phase: match phase {
                StoredPhase::Scheduled => TaskPhase::Scheduled,
                StoredPhase::Started => TaskPhase::Started,
                StoredPhase::Retrying { until } => TaskPhase::Retrying { until },
            },
            retries: retries.into_owned(),
            retry_count,
            timeout_at,
            heartbeat_seconds,
            heartbeat_at,
            dispatch: dispatch.map(Dispatch::from),
            outcome: outcome.map(|o| match o {
                StoredOutcome::Succeeded(v) => TaskOutcome::Succeeded(v.into_owned()),
                StoredOutcome::Failed(e) => TaskOutcome::Failed(e.into()),
                StoredOutcome::TimedOut(e) => TaskOutcome::TimedOut(e.into()),
            }),
            last_event,
        }
    }
}

impl<'a> From<&'a ErrorCause> for StoredFailure<'a> {
    fn from(failure: &'a ErrorCause) -> StoredFailure<'a> {
        let ErrorCause {
            error,
            cause,
            location,
        } = failure;
        StoredFailure {
            error: opt_text(error),
            cause: opt_text(cause),
            location: opt_text(location),
        }
    }
}

impl From<StoredFailure<'_>> for ErrorCause {
    fn from(stored: StoredFailure<'_>) -> ErrorCause {
        let StoredFailure {
            error,
            cause,
            location,
        } = stored;
        ErrorCause {
            error: opt_owned(error),
            cause: opt_owned(cause),
            location: opt_owned(location),
        }
    }
}

impl<'a> From<&'a Dispatch> for StoredDispatch<'a> {
    fn from(dispatch: &'a Dispatch) -> StoredDispatch<'a> {
        let Dispatch {
            task_id,
            state,
            attempt,
            token,
            resource,
            input,
            timeout_seconds,
            heartbeat_seconds,
            submitted,
            role_arn,
        } = dispatch;
        StoredDispatch {
            task_id: *task_id,
            state: text(state),
            attempt: *attempt,
            token: text(token),
            resource: resource.into(),
            input: Cow::Borrowed(input),
            timeout_seconds: *timeout_seconds,
            heartbeat_seconds: *heartbeat_seconds,
            submitted: submitted.as_ref().map(Cow::Borrowed),
            role_arn: opt_text(role_arn),
        }
    }
}

impl From<StoredDispatch<'_>> for Dispatch {
    fn from(stored: StoredDispatch<'_>) -> Dispatch {
        let StoredDispatch {
            task_id,
            state,
            attempt,
            token,
            resource,
            input,
            timeout_seconds,
            heartbeat_seconds,
            submitted,
            role_arn,
        } = stored;
        Dispatch {
            task_id,
            state: owned(state),
            attempt,
            token: owned(token),
            resource: resource.into(),
            input: input.into_owned(),
            timeout_seconds,
            heartbeat_seconds,
            submitted: submitted.map(Cow::into_owned),
            role_arn: opt_owned(role_arn),
        }
    }
}

impl<'a> From<&'a Resource> for StoredResource<'a> {
    fn from(resource: &'a Resource) -> StoredResource<'a> {
        match resource {
            Resource::Activity { arn } => StoredResource::Activity { arn: text(arn) },
            Resource::Lambda { arn } => StoredResource::Lambda { arn: text(arn) },
            Resource::Service {
                arn,
                service,
                action,
                pattern,
            } => StoredResource::Service {
                arn: text(arn),
                service: text(service),
                action: text(action),
                pattern: (*pattern).into(),
            },
            Resource::MapRun(spec) => StoredResource::MapRun(Box::new((&**spec).into())),
        }
    }
}

impl From<StoredResource<'_>> for Resource {
    fn from(stored: StoredResource<'_>) -> Resource {
        match stored {
            StoredResource::Activity { arn } => Resource::Activity { arn: owned(arn) },
            StoredResource::Lambda { arn } => Resource::Lambda { arn: owned(arn) },
            StoredResource::Service {
                arn,
                service,
                action,
                pattern,
            } => Resource::Service {
                arn: owned(arn),
                service: owned(service),
                action: owned(action),
                pattern: pattern.into(),
            },
            StoredResource::MapRun(spec) => Resource::MapRun(Box::new((*spec).into())),
        }
    }
}

impl<'a> From<&'a MapRunSpec> for StoredMapRunSpec<'a> {
    fn from(spec: &'a MapRunSpec) -> StoredMapRunSpec<'a> {
        let MapRunSpec {
            label,
            express,
            definition,
            items,
            reader,
            item_selector,
            selector_input,
            context,
            variables,
            batcher,
            writer,
            max_concurrency,
            tolerated_failure_count,
            tolerated_failure_percentage,
            redrive,
            jsonata,
            now,
        } = spec;
        StoredMapRunSpec {
            label: opt_text(label),
            express: *express,
            definition: text(definition),
            items: items.as_deref().map(Cow::Borrowed),
            reader: reader.as_ref().map(StoredS3Call::from),
            item_selector: item_selector.as_ref().map(Cow::Borrowed),
            selector_input: Cow::Borrowed(selector_input),
            context: Cow::Borrowed(context),
            variables: Cow::Borrowed(variables),
            batcher: batcher.as_ref().map(Cow::Borrowed),
            writer: writer.as_ref().map(StoredS3Call::from),
            max_concurrency: *max_concurrency,
            tolerated_failure_count: *tolerated_failure_count,
            tolerated_failure_percentage: *tolerated_failure_percentage,
            redrive: *redrive,
            jsonata: *jsonata,
            now: *now,
        }
    }
}

impl From<StoredMapRunSpec<'_>> for MapRunSpec {
    fn from(stored: StoredMapRunSpec<'_>) -> MapRunSpec {
        let StoredMapRunSpec {
            label,
            express,
            definition,
            items,
            reader,
            item_selector,
            selector_input,
            context,
            variables,
            batcher,
            writer,
            max_concurrency,
            tolerated_failure_count,
            tolerated_failure_percentage,
            redrive,
            jsonata,
            now,
        } = stored;
        MapRunSpec {
            label: opt_owned(label),
            express,
            definition: owned(definition),
            items: items.map(Cow::into_owned),
            reader: reader.map(S3Call::from),
            item_selector: item_selector.map(Cow::into_owned),
            selector_input: selector_input.into_owned(),
            context: context.into_owned(),
            variables: variables.into_owned(),
            batcher: batcher.map(Cow::into_owned),
            writer: writer.map(S3Call::from),
            max_concurrency,
            tolerated_failure_count,
            tolerated_failure_percentage,
            redrive,
            jsonata,
            now,
        }
    }
}

impl<'a> From<&'a S3Call> for StoredS3Call<'a> {
    fn from(call: &'a S3Call) -> StoredS3Call<'a> {
        let S3Call {
            resource,
            arguments,
            config,
        } = call;
        StoredS3Call {
            resource: text(resource),
            arguments: Cow::Borrowed(arguments),
            config: config.as_ref().map(Cow::Borrowed),
        }
    }
}

impl From<StoredS3Call<'_>> for S3Call {
    fn from(stored: StoredS3Call<'_>) -> S3Call {
        let StoredS3Call {
            resource,
            arguments,
            config,
        } = stored;
        S3Call {
            resource: owned(resource),
            arguments: arguments.into_owned(),
            config: config.map(Cow::into_owned),
        }
    }
}
