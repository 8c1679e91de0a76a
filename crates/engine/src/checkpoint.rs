//! What the engine checkpoints for an execution, and how it is stored: the execution row's
//! `runtime` column holds the checkpoint with the lanes of its large Parallel/Map containers
//! taken out, and each of those lanes (branch, iteration) has a row of its own ([`LaneRow`]).
//! A transition writes the checkpoint and only the lanes the interpreter says it touched
//! ([`Touched`]), so a Map of 10,000 iterations does not rewrite 10,000 lanes every time.
//!
//! A lane's row holds the lane but the lanes of a container inside it (those are rows of
//! their own); a stored container says how many lanes it has (`detached`), so rows left by an
//! earlier container at the same place are never read. Small containers keep their lanes
//! inline ([`INLINE_LANES`]). The stored text is the serde form of the engine's own types
//! ([`stored`]), never of the interpreter's.

#[cfg(test)]
mod golden;
mod stored;

use std::collections::{BTreeSet, HashMap};

use asl::interpreter::{Current, ExecutionInfo, Lane, Runtime, Status, Touched};
use serde_json::Value;
use store::{ExecutionRecord, LaneRow, Store};

use stored::{StoredCheckpoint, StoredCurrent, StoredInfo, StoredLane, StoredRuntime};
pub(crate) use stored::{StoredFailure, StoredMapRunSpec};

use crate::runner::ParentLink;
use crate::stored_twin::Twin;
use crate::Result;

/// The format of the stored checkpoint and of its lane rows ([`stored`]). 0: written before
/// formats were numbered (no `format` field); 1: the same layout, numbered; 2: a task's
/// dispatch may carry what its `.sync` job answered when submitted (`submitted`, absent
/// before); 3: a lane's state may name the `…StateEntered` events of the states the lane left
/// (`left`, absent before), and a task attempt may name the last event it wrote
/// (`last_event`, absent before: its next event follows the execution's last). Bump it with
/// every change to the serde shape of a type in [`stored`], and add the step that reads the
/// previous format to [`UPGRADES`]; the interpreter's types may change freely.
pub(crate) const FORMAT: u32 = 3;

/// `UPGRADES[n]` rewrites a stored checkpoint of format `n` (as JSON) into format `n + 1`.
const UPGRADES: [fn(&mut Value); FORMAT as usize] = [
    // 0 → 1: only the number is new.
    |_| {},
    // 1 → 2: `submitted` is optional.
    |_| {},
    // 2 → 3: `left` and `last_event` are optional.
    |_| {},
];

/// What the engine checkpoints in an execution record's `runtime` field (stored as a
/// [`StoredCheckpoint`]).
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    pub info: ExecutionInfo,
    pub runtime: Runtime,
    pub parent: Option<ParentLink>,
    /// The MockConfigFile test case (`StartExecution` on `stateMachineArn#TestCase`).
    pub test_case: Option<String>,
}

/// Which lanes a stored checkpoint must write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Lanes<'t> {
    /// Those a transition touched.
    Touched(&'t Touched),
    /// All of them: the stored checkpoint kept its lanes inline (an older store wrote it).
    All,
}

/// Containers of up to this many lanes keep them inline, in the row of the lane (or the
/// checkpoint) that holds the container: a row costs more than re-serializing a few small
/// lanes, and a transition may touch as many lanes as it runs states (256 by default).
const INLINE_LANES: usize = 256;

/// The lanes of every container stored apart: (path of the state holding the container, its
/// lanes), children before their parent.
type Detached<'c> = Vec<(Vec<usize>, &'c [Lane])>;

/// A stored checkpoint as read, its lanes not yet put back.
type Parsed = StoredCheckpoint<'static>;

impl Checkpoint {
    /// The checkpoint stored in `record`, its lanes read back from their rows. Also says
    /// whether it kept its lanes inline (an older store), so the next write must write all.
    pub async fn load(store: &dyn Store, record: &ExecutionRecord) -> Result<(Checkpoint, bool)> {
        let mut stored = parse(&record.runtime)?;
        let mut shape = Shape::default();
        if let Some(current) = stored.runtime.current.as_mut() {
            shape.scan(current);
            if shape.detached {
                let rows = store.execution_lanes(&record.arn).await?;
                let mut rows = rows.into_iter().map(|r| (r.path, r.body)).collect();
                attach(current, &mut Vec::new(), &mut rows)?;
            }
        }
        let mut checkpoint = Checkpoint::try_from(stored)?;
        let info = &mut checkpoint.info;
        if info.input_text.is_empty() {
            // Stored without it (see `store`): the record has the execution's input.
            info.input =
                crate::stored_json::from_str(&record.input).map_err(|e| corrupt(e.to_string()))?;
            info.input_text = record.input.clone();
        }
        Ok((checkpoint, shape.inline))
    }

    /// The checkpoint of a record whose redrive is committed, with `$$.Execution.RedriveCount`
    /// and `RedriveTime` from the record.
    pub async fn for_redrive(store: &dyn Store, record: &ExecutionRecord) -> Result<Checkpoint> {
        let (checkpoint, _) = Checkpoint::load(store, record).await?;
        Ok(checkpoint.redriven(record))
    }

    pub fn redriven(mut self, record: &ExecutionRecord) -> Checkpoint {
        self.info.redrive_count = record.redrive_count;
        self.info.redrive_time = record.redrive_date;
        self
    }

    /// Reads a stored checkpoint's text of any format up to [`FORMAT`] (see [`parse`]), its
    /// lanes inline: one whose lanes are in rows is refused (use [`Checkpoint::load`]).
    #[cfg(any(test, fuzzing))]
    pub fn parse(text: &str) -> Result<Checkpoint> {
        Checkpoint::try_from(parse(text)?)
    }

    /// Stands in for a checkpoint that is being parsed (see `Runner::reopen_detached`).
    pub fn placeholder() -> Checkpoint {
        Checkpoint {
            info: ExecutionInfo::default(),
            // Not running: a signal that finds it after a failed re-opening does nothing.
            runtime: Runtime {
                status: Status::Failed,
                ..Runtime::new()
            },
            parent: None,
            test_case: None,
        }
    }

    /// The checkpoint as stored: its text without lanes and without the execution input (the
    /// record keeps that, and it may be 256 KiB), and the rows of the lanes `which` names.
    pub fn store(&self, which: Lanes<'_>) -> (String, Vec<LaneRow>) {
        let text = self.to_json(false, INLINE_LANES);
        let mut detached = Detached::new();
        if let Some(current) = self.runtime.current.as_ref() {
            detach(current, &mut Vec::new(), &mut detached);
        }
        (text, lane_rows(&detached, which))
    }

    /// The stored form of the whole checkpoint, every lane and the input inline: what a
    /// checkpoint read back must equal (checked in debug builds and by the fuzz targets).
    #[cfg(any(test, debug_assertions, fuzzing))]
    pub fn whole(&self) -> String {
        self.to_json(true, usize::MAX)
    }

    /// The stored text, the lanes of containers of more than `inline` lanes left out.
    fn to_json(&self, with_input: bool, inline: usize) -> String {
        let Checkpoint {
            info,
            runtime,
            parent,
            test_case,
        } = self;
        let info = StoredInfo::view(info, inline);
        let stored = StoredCheckpoint {
            format: FORMAT,
            info: match with_input {
                true => info,
                false => info.without_input(),
            },
            runtime: StoredRuntime::view(runtime, inline),
            parent: parent.as_ref().map(std::borrow::Cow::Borrowed),
            test_case: test_case.as_deref().map(std::borrow::Cow::Borrowed),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }
}

impl TryFrom<Parsed> for Checkpoint {
    type Error = crate::Error;

    fn try_from(stored: Parsed) -> Result<Checkpoint> {
        let StoredCheckpoint {
            format: _,
            info,
            runtime,
            parent,
            test_case,
        } = stored;
        let lanes_missing = |_| corrupt("a container's lanes are missing".into());
        Ok(Checkpoint {
            info: info.load().map_err(lanes_missing)?,
            runtime: runtime.load().map_err(lanes_missing)?,
            parent: parent.map(std::borrow::Cow::into_owned),
            test_case: test_case.map(std::borrow::Cow::into_owned),
        })
    }
}

/// Reads a stored checkpoint's text of any format up to [`FORMAT`]; one written by a newer
/// build is refused. The current format is read directly; an older one is upgraded as JSON,
/// one step at a time.
fn parse(text: &str) -> Result<Parsed> {
    if let Ok(checkpoint) = crate::stored_json::from_str::<Parsed>(text) {
        if checkpoint.format == FORMAT {
            return Ok(checkpoint);
        }
    }
    let mut value: Value =
        crate::stored_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    if !value.is_object() {
        return Err(corrupt("a checkpoint is a JSON object".into()));
    }
    let format = value.get("format").map_or(Some(0), Value::as_u64);
    let format = match format.and_then(|f| usize::try_from(f).ok()) {
        Some(f) if f <= UPGRADES.len() => f,
        _ => {
            return Err(corrupt(format!(
                "checkpoint format {} is not one this build reads (0 to {FORMAT}): a newer build wrote it",
                value["format"]
            )))
        }
    };
    for step in &UPGRADES[format..] {
        step(&mut value);
    }
    if let Some(checkpoint) = value.as_object_mut() {
        checkpoint.insert("format".into(), FORMAT.into());
    }
    crate::stored_json::from_str(&value.to_string()).map_err(|e| corrupt(e.to_string()))
}

/// Debug builds check every commit: the stored checkpoint, its lanes read back from their
/// rows, must be the one in memory. A lane changed without being marked touched fails here,
/// in whichever test first runs into it. The process aborts: a panic would only end the
/// worker task that committed.
#[cfg(debug_assertions)]
pub(crate) async fn verify(store: &dyn Store, record: &ExecutionRecord, memory: &Checkpoint) {
    if memory
        .runtime
        .current
        .as_ref()
        .and_then(|c| c.container.as_ref())
        .is_none()
    {
        return;
    }
    let stored = Checkpoint::load(store, record).await.map(|(c, _)| c);
    let same = match &stored {
        Ok(stored) => stored.whole() == memory.whole(),
        Err(_) => false,
    };
    if !same {
        eprintln!(
            "stored checkpoint of {} differs from memory:\nstored: {stored:?}\nmemory: {memory:?}",
            record.arn
        );
        std::process::abort();
    }
}

/// Collects the lanes of every container of more than [`INLINE_LANES`] lanes in `current`
/// (and below), depth first.
fn detach<'c>(current: &'c Current, path: &mut Vec<usize>, out: &mut Detached<'c>) {
    let Some(c) = current.container.as_ref() else {
        return;
    };
    for (i, lane) in c.lanes.iter().enumerate() {
        if let Some(inner) = lane.current.as_ref() {
            path.push(i);
            detach(inner, path, out);
            path.pop();
        }
    }
    if c.lanes.len() > INLINE_LANES {
        out.push((path.clone(), &c.lanes));
    }
}

/// The rows of the lanes `which` names, from the lanes [`detach`] collected.
fn lane_rows(detached: &Detached<'_>, which: Lanes<'_>) -> Vec<LaneRow> {
    let row = |path: &[usize], lane: &Lane| LaneRow {
        path: key(path),
        body: serde_json::to_string(&StoredLane::view(lane, INLINE_LANES)).unwrap_or_default(),
    };
    let touched = match which {
        Lanes::All => {
            let all = detached.iter().flat_map(lanes_of);
            return all.map(|(path, lane)| row(&path, lane)).collect();
        }
        Lanes::Touched(t) => t,
    };
    let holders: HashMap<&[usize], &[Lane]> = detached
        .iter()
        .map(|(p, lanes)| (p.as_slice(), *lanes))
        .collect();
    // Containers created by the transition: every lane below them is new.
    let new =
        |holder: &[usize]| (0..=holder.len()).any(|n| touched.containers.contains(&holder[..n]));
    let created = detached.iter().filter(|(holder, _)| new(holder));
    let mut paths: BTreeSet<Vec<usize>> = created.flat_map(lanes_of).map(|(p, _)| p).collect();
    paths.extend(
        touched
            .lanes
            .iter()
            .filter_map(|p| row_of(p, &holders))
            .map(<[usize]>::to_vec),
    );
    let lane = |path: &[usize]| {
        let (&i, holder) = path.split_last()?;
        holders.get(holder)?.get(i)
    };
    // A touched lane may be gone since (its container was dropped in the same call).
    let rows = paths.iter().filter_map(|p| Some(row(p, lane(p)?)));
    rows.collect()
}

/// The lanes of a detached container, with their paths.
fn lanes_of<'c>(
    (holder, lanes): &(Vec<usize>, &'c [Lane]),
) -> impl Iterator<Item = (Vec<usize>, &'c Lane)> {
    let holder = holder.clone();
    let lanes = lanes.iter().enumerate();
    lanes.map(move |(i, lane)| ([holder.as_slice(), &[i]].concat(), lane))
}

/// The stored lane whose row holds lane `path`: the lane itself when its container is stored
/// apart, or else the one holding that container, and so on up (`None`: the checkpoint's
/// own text, always written).
fn row_of<'p>(path: &'p [usize], holders: &HashMap<&[usize], &[Lane]>) -> Option<&'p [usize]> {
    let mut p = path;
    while let Some((_, holder)) = p.split_last() {
        if holders.contains_key(holder) {
            return Some(p);
        }
        p = holder;
    }
    None
}

/// Whether the checkpoint stored in `record` waits for task attempt `task_id`, read from the
/// row alone: `None` when the row cannot tell, because some container keeps its lanes in rows
/// of their own (which may hold the attempt) and it is not among the others.
pub(crate) fn waits_for_task(record: &ExecutionRecord, task_id: u64) -> Result<Option<bool>> {
    let mut stored = parse(&record.runtime)?;
    let detached = stored
        .runtime
        .current
        .as_mut()
        .is_some_and(leave_out_detached);
    let checkpoint = Checkpoint::try_from(stored)?;
    let found = checkpoint
        .runtime
        .pending_tasks()
        .iter()
        .any(|t| t.id == task_id);
    Ok((found || !detached).then_some(found))
}

/// Empties every container below `current` whose lanes are in rows, as if it had no lanes;
/// says whether there was one.
fn leave_out_detached(current: &mut StoredCurrent<'static>) -> bool {
    let Some(c) = current.container.as_mut() else {
        return false;
    };
    let mut detached = std::mem::take(&mut c.detached) > 0;
    for inner in c.lanes.iter_mut().filter_map(|l| l.current.as_mut()) {
        detached |= leave_out_detached(inner);
    }
    detached
}

/// Puts the lanes of every stored container below `current` back from their rows.
fn attach(
    current: &mut StoredCurrent<'static>,
    path: &mut Vec<usize>,
    rows: &mut HashMap<String, String>,
) -> Result<()> {
    let Some(c) = current.container.as_mut() else {
        return Ok(());
    };
    if c.detached > 0 {
        let mut lanes = Vec::with_capacity(c.detached);
        for i in 0..c.detached {
            path.push(i);
            let body = rows
                .remove(&key(path))
                .ok_or_else(|| corrupt(format!("lane {} is missing", key(path))))?;
            lanes.push(crate::stored_json::from_str(&body).map_err(|e| corrupt(e.to_string()))?);
            path.pop();
        }
        c.lanes = lanes;
        c.detached = 0;
    }
    for (i, lane) in c.lanes.iter_mut().enumerate() {
        if let Some(inner) = lane.current.as_mut() {
            path.push(i);
            attach(inner, path, rows)?;
            path.pop();
        }
    }
    Ok(())
}

/// How a stored checkpoint keeps its lanes.
#[derive(Default)]
struct Shape {
    /// Some container's lanes are in rows.
    detached: bool,
    /// Some container keeps more lanes inline than this store would: an older store wrote
    /// it.
    inline: bool,
}

impl Shape {
    fn scan(&mut self, current: &StoredCurrent<'_>) {
        let Some(c) = current.container.as_ref() else {
            return;
        };
        self.detached |= c.detached > 0;
        self.inline |= c.lanes.len() > INLINE_LANES;
        for inner in c.lanes.iter().filter_map(|l| l.current.as_ref()) {
            self.scan(inner);
        }
    }
}

/// A lane's row key: its path, `3/0` for lane 0 of the container in lane 3.
fn key(path: &[usize]) -> String {
    let parts: Vec<String> = path.iter().map(usize::to_string).collect();
    parts.join("/")
}

fn corrupt(message: String) -> crate::Error {
    crate::Error::Store(store::Error::Corrupt(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(format: Option<u64>) -> String {
        let mut value: Value =
            serde_json::from_str(&Checkpoint::placeholder().whole()).expect("JSON");
        match format {
            Some(f) => value["format"] = f.into(),
            None => drop(value.as_object_mut().and_then(|o| o.remove("format"))),
        }
        value.to_string()
    }

    #[test]
    fn every_older_format_reads_and_a_newer_one_is_refused() {
        let current = Checkpoint::placeholder();
        let text = current.whole();
        assert!(text.contains(&format!("\"format\":{FORMAT}")), "{text}");
        for older in [None, Some(0)] {
            let read = parse(&stored(older)).expect("an older format reads");
            assert_eq!(read.format, FORMAT, "upgraded to the current format");
            let read = Checkpoint::try_from(read).expect("converts");
            assert_eq!(read.runtime.status, current.runtime.status);
        }
        let newer = Checkpoint::parse(&stored(Some(u64::from(FORMAT) + 1)));
        let message = newer.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("a newer build wrote it"), "{message}");
        assert!(Checkpoint::parse("{\"format\":\"one\"}").is_err());
        // Found by the checkpoint fuzz target: text that is JSON but no object.
        for not_an_object in ["[1]", "3", "\"x\"", "null"] {
            assert!(Checkpoint::parse(not_an_object).is_err(), "{not_an_object}");
        }
    }
}
