//! Parallel and Inline Map states: a container of lanes (branches, iterations), each a scope
//! run state by state; `MaxConcurrency`; a failed lane aborts the others, and the state
//! retries, is caught or fails its scope.

use serde_json::{json, Map, Value};

use crate::definition::{
    MapState, MaxConcurrency, ParallelState, Payload, QueryLanguage, ResultHandling, State,
    StateKind,
};
use crate::error::ErrorCause;
use crate::history::EventDetails;
use crate::jsonata::States;
use crate::task::error_matches;
use crate::template::Scope;

use super::{map_run, select, Container, Current, Lane, LaneStatus, Outcome, Run, ScopeEnd};

impl<'a> Run<'a> {
    /// Drives a Parallel or Map state: builds its lanes on entry, runs every lane that may
    /// run, and exits once all succeeded. A failed lane aborts the others and fails the
    /// state, which then retries, is caught or fails its scope.
    pub(super) fn container(
        &mut self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, ErrorCause> {
        let Some(handling) = state.kind.result_handling() else {
            return Ok(Outcome::Blocked);
        };
        let is_map = matches!(state.kind, StateKind::Map(_));
        let state_type = state.kind.event_prefix().to_owned();
        if let Some(until) = self.cur().and_then(|c| c.wait_until) {
            if until > self.now {
                return Ok(Outcome::Blocked);
            }
            if let Some(c) = self.cur_mut() {
                c.wait_until = None;
            }
        }
        if let StateKind::Map(m) = &state.kind {
            if let Some(d) = &m.distributed {
                return self.map_run(state, m, d, raw, context);
            }
        }
        if self.cur().is_some_and(|c| c.container.is_none()) {
            let max_concurrency = self.max_concurrency(state, raw, context)?;
            let lanes = match self.lanes(state, raw, context) {
                Ok(lanes) => lanes,
                Err(e) => {
                    let prev = self.last();
                    self.push(prev, EventDetails::ContainerFailed { state_type });
                    return Err(e);
                }
            };
            if let Some(c) = self.cur_mut() {
                c.container = Some(Box::new(Container {
                    lanes,
                    started: false,
                    max_concurrency,
                }));
            }
            self.out.touched.containers.insert(self.path.clone());
        }
        let count = self.lanes_ref().len();
        if self
            .cur()
            .and_then(|c| c.container.as_ref())
            .is_some_and(|c| !c.started)
        {
            let prev = self.last();
            let length = is_map.then_some(count as u64);
            self.push(
                prev,
                EventDetails::ContainerStarted {
                    state_type: state_type.clone(),
                    length,
                },
            );
            if let Some(c) = self.cur_mut().and_then(|c| c.container.as_mut()) {
                c.started = true;
            }
        }
        let name = state.name.clone();
        let mut last_iteration_end = None;
        loop {
            let mut progressed = false;
            let mut running = self
                .lanes_ref()
                .iter()
                .filter(|l| l.status == LaneStatus::Running)
                .count() as u64;
            for i in 0..count {
                let pending = self.lanes_ref()[i].status == LaneStatus::Pending;
                let max_concurrency = self
                    .cur()
                    .and_then(|c| c.container.as_ref())
                    .map_or(0, |c| c.max_concurrency);
                if !pending || (max_concurrency > 0 && running >= max_concurrency) {
                    continue;
                }
                let start_at = match &state.kind {
                    StateKind::Parallel(p) => p.branches.get(i).map(|b| b.start_at.clone()),
                    StateKind::Map(m) => Some(m.processor.start_at.clone()),
                    _ => None,
                }
                .unwrap_or_default();
                if is_map {
                    let prev = self.last();
                    self.push(
                        prev,
                        EventDetails::MapIteration {
                            phase: "Started".into(),
                            name: name.clone(),
                            index: i as u64,
                        },
                    );
                }
                let now = self.now;
                let vars = self.vars.clone();
                if let Some(lane) = self.lane_mut(i) {
                    let input = std::mem::take(&mut lane.input);
                    lane.current = Some(Current::new(start_at, input, now));
                    lane.status = LaneStatus::Running;
                    lane.variables = vars;
                }
                running += 1;
            }
            let now = self.now;
            for i in 0..count {
                let lane = &self.lanes_ref()[i];
                // Lanes that wait are not visited: a Map of 10,000 iterations waiting on
                // tasks would otherwise look at all of them for each task that ends.
                let idle = lane.current.as_ref().is_some_and(|c| c.idle_at(now));
                if lane.status != LaneStatus::Running || idle {
                    continue;
                }
                // Taking the variables out and putting them back does not touch the lane: if
                // the lane's states change them, they change the lane too.
                let lane_vars = self
                    .lanes_mut()
                    .get_mut(i)
                    .map(|l| std::mem::take(&mut l.variables));
                let outer = std::mem::replace(&mut self.vars, lane_vars.unwrap_or_default());
                self.path.push(i);
                let end = self.run_scope();
                self.path.pop();
                let lane_vars = std::mem::replace(&mut self.vars, outer);
                if let Some(lane) = self.lanes_mut().get_mut(i) {
                    lane.variables = lane_vars;
                }
                match end {
                    ScopeEnd::Done(output) => {
                        progressed = true;
                        if let Some(lane) = self.lane_mut(i) {
                            // A lane that succeeded never runs again: only its output is kept.
                            lane.status = LaneStatus::Succeeded;
                            lane.output = Some(output);
                            lane.current = None;
                            lane.variables = Map::new();
                        }
                        if is_map {
                            let prev = self.last();
                            let details = EventDetails::MapIteration {
                                phase: "Succeeded".into(),
                                name: name.clone(),
                                index: i as u64,
                            };
                            last_iteration_end = Some(self.push(prev, details));
                            self.rt.chain = Some(prev);
                        }
                    }
                    ScopeEnd::Failed(ec) => {
                        if let StateKind::Parallel(p) = &state.kind {
                            self.branch_task_aborted(p, i);
                        }
                        self.lane_failed(i, is_map, &name);
                        return self.container_error(state, handling, raw, ec);
                    }
                    ScopeEnd::TimedOut => return Ok(Outcome::TimedOut),
                    ScopeEnd::Blocked if self.out.yielded => return Ok(Outcome::Blocked),
                    ScopeEnd::Blocked => {}
                }
            }
            if self
                .lanes_ref()
                .iter()
                .all(|l| l.status == LaneStatus::Succeeded)
            {
                let outputs: Vec<Value> = self
                    .lanes_ref()
                    .iter()
                    .map(|l| l.output.clone().unwrap_or(Value::Null))
                    .collect();
                let prev = last_iteration_end.unwrap_or_else(|| self.last());
                self.push(prev, EventDetails::ContainerSucceeded { state_type });
                self.rt.chain = Some(prev);
                let result = Value::Array(outputs);
                return match self.exit_with_result(state, handling, raw, context, result)? {
                    Ok(output) => Ok(Outcome::Exit(output)),
                    Err(ec) => self.container_error(state, handling, raw, ec),
                };
            }
            if !progressed {
                return Ok(Outcome::Blocked);
            }
        }
    }

    /// `MaxConcurrency`, or `MaxConcurrencyPath` read from the state input.
    pub(super) fn max_concurrency(
        &mut self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<u64, ErrorCause> {
        let StateKind::Map(m) = &state.kind else {
            return Ok(0);
        };
        let path = match &m.max_concurrency {
            MaxConcurrency::Fixed(n) => return Ok(*n),
            MaxConcurrency::Jsonata(t) => {
                let states = States::new(raw, context);
                let range = (0, i64::from(u32::MAX));
                let n = self.jsonata_integer(state, t, "MaxConcurrency", states, range)?;
                return Ok(n as u64);
            }
            MaxConcurrency::Path(path) => path,
        };
        let value = select(path, raw, context, &self.vars).unwrap_or(Value::Null);
        // A float is truncated and a string holding an integer is read as one (as AWS does);
        // anything else is refused, a negative number with its own message.
        let n = match &value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n < 0 => Err(ErrorCause::runtime(format!(
                "Expected non-negative integer for MaxConcurrency, got '{n}' instead."
            ))),
            Some(n) => Ok(n as u64),
            None => Err(ErrorCause::runtime(format!(
                "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {}",
                map_run::quoted_value(&value),
                path.text()
            ))),
        }
    }

    /// A JSONata Task that failed branch `i` of a Parallel: AWS records `TaskStateAborted`
    /// for it after its failure (a recording of November 2024; none shows a JSONPath Task
    /// failing a branch, so those are left as they were).
    fn branch_task_aborted(&mut self, p: &ParallelState, i: usize) {
        let failed = self
            .lanes_ref()
            .get(i)
            .and_then(|l| l.current.as_ref())
            .and_then(|c| p.branches.get(i)?.state(&c.state));
        let aborted = failed.is_some_and(|s| {
            matches!(s.kind, StateKind::Task(_)) && s.query_language == QueryLanguage::Jsonata
        });
        if aborted {
            let prev = self.last();
            let state_type = "Task".into();
            self.push(prev, EventDetails::StateAborted { state_type });
        }
    }

    /// Marks lane `i` failed and aborts the lanes still running.
    pub(super) fn lane_failed(&mut self, i: usize, is_map: bool, name: &str) {
        let mut aborted = Vec::new();
        for (j, lane) in self.lanes_mut().iter_mut().enumerate() {
            if j == i {
                lane.status = LaneStatus::Failed;
            } else if lane.status == LaneStatus::Running {
                lane.status = LaneStatus::Aborted;
                aborted.push(j);
            }
        }
        for j in aborted.iter().copied().chain([i]) {
            self.touch_lane(j);
        }
        if is_map {
            let prev = self.last();
            self.push(
                prev,
                EventDetails::MapIteration {
                    phase: "Failed".into(),
                    name: name.into(),
                    index: i as u64,
                },
            );
            self.rt.chain = Some(prev);
            for j in aborted {
                let prev = self.last();
                self.push(
                    prev,
                    EventDetails::MapIteration {
                        phase: "Aborted".into(),
                        name: name.into(),
                        index: j as u64,
                    },
                );
            }
        }
    }

    /// The lanes of a Parallel or Map state on entry: one per branch, or one per item.
    pub(super) fn lanes(
        &mut self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<Vec<Lane>, ErrorCause> {
        let effective = self.apply_path(&state.input_path, raw, context)?;
        let pending = |input: Value| Lane {
            status: LaneStatus::Pending,
            input,
            current: None,
            output: None,
            variables: Map::new(),
        };
        match &state.kind {
            StateKind::Parallel(p) => {
                let input = match &p.parameters {
                    Some(Payload::Path(t)) => t.render(
                        &mut Scope::new(&effective, context, self.entropy)
                            .with_variables(&self.vars),
                    )?,
                    Some(Payload::Jsonata(t)) => {
                        self.render(state, t, States::new(raw, context))?
                    }
                    None => effective,
                };
                Ok(p.branches.iter().map(|_| pending(input.clone())).collect())
            }
            StateKind::Map(m) => {
                let items = self.map_items(state, m, raw, &effective, context)?;
                let mut lanes = Vec::with_capacity(items.len());
                // One copy of the context for all items: only `$$.Map` changes between them.
                let mut ctx = context.clone();
                for (index, item) in items.into_iter().enumerate() {
                    let input = match &m.item_selector {
                        Some(selector) => {
                            ctx["Map"] = json!({ "Item": { "Index": index, "Value": item } });
                            match selector {
                                Payload::Path(t) => t.render(
                                    &mut Scope::new(&effective, &ctx, self.entropy)
                                        .with_variables(&self.vars),
                                )?,
                                Payload::Jsonata(t) => {
                                    self.render(state, t, States::new(raw, &ctx))?
                                }
                            }
                        }
                        None => item,
                    };
                    lanes.push(pending(input));
                }
                Ok(lanes)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A Map state's items: `ItemsPath` (JSONPath) or `Items` (JSONata; by default the
    /// input), which must be an array.
    pub(super) fn map_items(
        &mut self,
        state: &State,
        m: &MapState,
        raw: &Value,
        effective: &Value,
        context: &Value,
    ) -> Result<Vec<Value>, ErrorCause> {
        let items = match (state.query_language, &m.items) {
            (QueryLanguage::JsonPath, _) => self.apply_path(&m.items_path, effective, context)?,
            (QueryLanguage::Jsonata, None) => effective.clone(),
            (QueryLanguage::Jsonata, Some(t)) => {
                match self.render(state, t, States::new(raw, context))? {
                    items @ Value::Array(_) => items,
                    other => {
                        let e = t.unexpected_type("Items", "array", &other);
                        return Err(self.evaluation_failed(state, e));
                    }
                }
            }
        };
        let Value::Array(items) = items else {
            let cause = format!("Map state input must be an array but was: {items}");
            return Err(match state.query_language {
                QueryLanguage::JsonPath => ErrorCause::runtime(cause),
                QueryLanguage::Jsonata => {
                    self.evaluation_failed(state, ErrorCause::query(cause, None))
                }
            });
        };
        Ok(items)
    }

    /// Retries the whole Parallel or Map state, catches its error, or fails its scope. The
    /// lanes are kept when the error ends the scope: redrive re-runs only the unsuccessful ones.
    pub(super) fn container_error(
        &mut self,
        state: &State,
        handling: &ResultHandling,
        raw: &Value,
        ec: ErrorCause,
    ) -> Result<Outcome, ErrorCause> {
        let ResultHandling { retry, catch, .. } = handling;
        let error = ec.error.clone().unwrap_or_default();
        if let Some(i) = retry
            .iter()
            .position(|r| error_matches(&r.error_equals, &error))
        {
            let r = &retry[i];
            let used = self
                .cur()
                .and_then(|c| c.container_retries.get(i).copied())
                .unwrap_or(0);
            if used < r.max_attempts {
                let mut delay = r.delay_seconds(used);
                if r.full_jitter {
                    delay *= self.entropy.next_f64();
                }
                let until = self
                    .now
                    .saturating_add((delay * 1000.0 * self.limits.wait_time_scale) as i64);
                if let Some(c) = self.cur_mut() {
                    c.container_retries
                        .resize(c.container_retries.len().max(i + 1), 0);
                    c.container_retries[i] += 1;
                    c.container = None;
                    c.wait_until = Some(until);
                }
                return Ok(Outcome::Again);
            }
        }
        // Not retried: the state fails (and is caught, or fails its scope).
        let prev = self.last();
        let state_type = state.kind.event_prefix().to_owned();
        self.push(prev, EventDetails::ContainerFailed { state_type });
        match catch
            .iter()
            .find(|c| error_matches(&c.error_equals, &error))
        {
            Some(c) => self.caught(state, c, raw, ec),
            None => Ok(Outcome::Fail(ec)),
        }
    }

    pub(super) fn lanes_ref(&self) -> &[Lane] {
        self.cur()
            .and_then(|c| c.container.as_ref())
            .map_or(&[], |c| c.lanes.as_slice())
    }

    /// Lane `i` of the container being run, for a change: it is marked touched.
    pub(super) fn lane_mut(&mut self, i: usize) -> Option<&mut Lane> {
        self.touch_lane(i);
        self.lanes_mut().get_mut(i)
    }

    pub(super) fn touch_lane(&mut self, i: usize) {
        let mut path = self.path.clone();
        path.push(i);
        self.out.touched.lanes.insert(path);
    }

    /// The lanes of the container being run; a change to one must be marked
    /// ([`Run::touch_lane`]).
    pub(super) fn lanes_mut(&mut self) -> &mut [Lane] {
        match self.cur_mut().and_then(|c| c.container.as_mut()) {
            Some(c) => c.lanes.as_mut_slice(),
            None => &mut [],
        }
    }
}
