//! The stored checkpoint's own types: the durable twin of every interpreter type a checkpoint
//! holds, with the serde shape of format 3 ([`FORMAT`](super::FORMAT)). The interpreter's types
//! carry no serde; each twin here is declared with its field list, which writes the
//! conversions both ways ([`crate::stored_twin`]), so renaming an `asl` field changes nothing
//! on disk, and adding one does not compile until it is added to its twin's list. Changing a
//! list (a field's name, type, order or serde attributes) is a new format (bump `FORMAT`, add
//! an `UPGRADES` step).

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
use crate::stored_twin::{stored_enum, stored_struct, LanesMissing, Twin};

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

stored_struct! {
    /// [`ExecutionInfo`] as stored.
    ExecutionInfo => pub(crate) struct StoredInfo<'a> {
        execution_arn: Cow<'a, str>,
        name: Cow<'a, str>,
        state_machine_arn: Cow<'a, str>,
        state_machine_name: Cow<'a, str>,
        role_arn: Cow<'a, str>,
        start_time: i64,
        /// `null` in the execution row, which leaves it to the record.
        input: Cow<'a, Value>,
        redrive_count: u32,
        redrive_time: Option<i64>,
        /// Empty in the execution row, as `input`.
        #[serde(default)]
        input_text: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state_machine_version_arn: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state_machine_alias_arn: Option<Cow<'a, str>>,
    }
}

impl StoredInfo<'_> {
    /// Without the execution input, as the execution row keeps it.
    pub fn without_input(self) -> Self {
        StoredInfo {
            input: Cow::Owned(Value::Null),
            input_text: Cow::Borrowed(""),
            ..self
        }
    }
}

stored_struct! {
    /// [`Runtime`] as stored.
    Runtime => pub(crate) struct StoredRuntime<'a> {
        status: StoredStatus,
        last_event_id: u64,
        current: Option<StoredCurrent<'a>>,
        deadline: Option<i64>,
        output: Option<Cow<'a, str>>,
        error: Option<Cow<'a, str>>,
        cause: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain: Option<u64>,
        #[serde(default, skip_serializing_if = "no_variables")]
        variables: Cow<'a, Map<String, Value>>,
        /// Absent (as written before it was kept) reads as not yielded.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        yielded: bool,
    }
}

stored_struct! {
    /// [`Current`] as stored.
    Current => pub(crate) struct StoredCurrent<'a> {
        state: Cow<'a, str>,
        input: Cow<'a, Value>,
        entered_event_id: Option<u64>,
        #[serde(default)]
        entered_after: u64,
        entered_time: i64,
        wait_until: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<StoredTask<'a>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<Box<StoredContainer<'a>>>,
        #[serde(default, skip_serializing_if = "none")]
        container_retries: Cow<'a, [u32]>,
        #[serde(default, skip_serializing_if = "none")]
        left: Cow<'a, [u64]>,
    }
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

/// Its lanes, or only their count when there are more than `inline`.
impl<'a> Twin<'a> for StoredContainer<'a> {
    type Memory = Container;

    fn view(container: &'a Container, inline: usize) -> StoredContainer<'a> {
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

    fn load(self) -> Result<Container, LanesMissing> {
        let StoredContainer {
            lanes,
            started,
            max_concurrency,
            detached,
        } = self;
        if detached > 0 {
            return Err(LanesMissing);
        }
        Ok(Container {
            lanes: lanes
                .into_iter()
                .map(StoredLane::load)
                .collect::<Result<_, _>>()?,
            started,
            max_concurrency,
        })
    }
}

stored_struct! {
    /// [`Lane`] as stored.
    Lane => pub(crate) struct StoredLane<'a> {
        status: StoredLaneStatus,
        input: Cow<'a, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current: Option<StoredCurrent<'a>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Cow<'a, Value>>,
        #[serde(default, skip_serializing_if = "no_variables")]
        variables: Cow<'a, Map<String, Value>>,
    }
}

stored_struct! {
    /// [`TaskRun`] as stored.
    TaskRun => pub(crate) struct StoredTask<'a> {
        id: u64,
        phase: StoredPhase,
        retries: Cow<'a, [u32]>,
        retry_count: u32,
        timeout_at: Option<i64>,
        heartbeat_seconds: Option<u64>,
        heartbeat_at: Option<i64>,
        dispatch: Option<StoredDispatch<'a>>,
        outcome: Option<StoredOutcome<'a>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_event: Option<u64>,
    }
}

stored_enum! {
    /// [`TaskPhase`] as stored.
    TaskPhase => pub(crate) enum StoredPhase {
        Scheduled,
        Started,
        Retrying { until: i64 },
    }
}

stored_enum! {
    /// [`TaskOutcome`] as stored.
    TaskOutcome => pub(crate) enum StoredOutcome<'a> {
        Succeeded(output: Cow<'a, Value>),
        Failed(error: StoredFailure<'a>),
        TimedOut(error: StoredFailure<'a>),
    }
}

stored_struct! {
    /// [`Dispatch`] as stored.
    Dispatch => pub(crate) struct StoredDispatch<'a> {
        task_id: u64,
        state: Cow<'a, str>,
        attempt: u32,
        token: Cow<'a, str>,
        resource: StoredResource<'a>,
        input: Cow<'a, Value>,
        timeout_seconds: Option<u64>,
        heartbeat_seconds: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        submitted: Option<Cow<'a, Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_arn: Option<Cow<'a, str>>,
    }
}

stored_enum! {
    /// [`Resource`] as stored.
    Resource => pub(crate) enum StoredResource<'a> {
        Activity { arn: Cow<'a, str> },
        Lambda { arn: Cow<'a, str> },
        Service {
            arn: Cow<'a, str>,
            service: Cow<'a, str>,
            action: Cow<'a, str>,
            pattern: StoredPattern,
        },
        MapRun(spec: Box<StoredMapRunSpec<'a>>),
    }
}

stored_struct! {
    /// [`MapRunSpec`] as stored (in a checkpoint's dispatch, and in the Map Run's record).
    MapRunSpec => pub(crate) struct StoredMapRunSpec<'a> {
        label: Option<Cow<'a, str>>,
        express: bool,
        definition: Cow<'a, str>,
        items: Option<Cow<'a, [Value]>>,
        reader: Option<StoredS3Call<'a>>,
        item_selector: Option<Cow<'a, Value>>,
        selector_input: Cow<'a, Value>,
        context: Cow<'a, Value>,
        variables: Cow<'a, Map<String, Value>>,
        batcher: Option<Cow<'a, Value>>,
        writer: Option<StoredS3Call<'a>>,
        max_concurrency: u64,
        tolerated_failure_count: Option<u64>,
        tolerated_failure_percentage: Option<f64>,
        #[serde(default)]
        redrive: u32,
        #[serde(default)]
        jsonata: bool,
        #[serde(default)]
        now: i64,
    }
}

/// The Map Run record's `spec`.
impl<'a> From<&'a MapRunSpec> for StoredMapRunSpec<'a> {
    fn from(spec: &'a MapRunSpec) -> StoredMapRunSpec<'a> {
        StoredMapRunSpec::view(spec, usize::MAX)
    }
}

stored_struct! {
    /// [`S3Call`] as stored.
    S3Call => pub(crate) struct StoredS3Call<'a> {
        resource: Cow<'a, str>,
        arguments: Cow<'a, Value>,
        config: Option<Cow<'a, Value>>,
    }
}

stored_struct! {
    /// [`ErrorCause`] as stored (in a task outcome, and in history events).
    ErrorCause => pub(crate) struct StoredFailure<'a> {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Cow<'a, str>>,
    }
}

stored_enum! {
    /// [`Status`] as stored.
    Status => pub(crate) enum StoredStatus { Running, Succeeded, Failed, TimedOut, Aborted }
}

stored_enum! {
    /// [`LaneStatus`] as stored.
    LaneStatus => pub(crate) enum StoredLaneStatus { Pending, Running, Succeeded, Failed, Aborted }
}

stored_enum! {
    /// [`Pattern`] as stored.
    Pattern => pub(crate) enum StoredPattern { RequestResponse, Sync, Sync2, WaitForTaskToken }
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
