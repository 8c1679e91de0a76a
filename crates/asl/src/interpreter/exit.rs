//! How a state leaves: its result shaped into an output (`ResultSelector`, `ResultPath`,
//! `OutputPath`, JSONata `Output`), `Assign`, a caught error's `Next`, and the
//! `…StateExited` event with its size and depth checks.

use serde_json::{json, Value};

use crate::definition::{Payload, QueryLanguage, ResultHandling, State};
use crate::error::{names, ErrorCause};
use crate::history::EventDetails;
use crate::io::{self};
use crate::jsonata::{self, States};
use crate::task::Catcher;
use crate::template::{Scope, Template};

use super::{Current, Outcome, Run, ScopeEnd, MAX_PAYLOAD_BYTES};

impl<'a> Run<'a> {
    /// How a JSONata state leaves: its `Assign` takes effect at the exit, and its output is
    /// `Output`, or `default` (the input, the result or the error output).
    pub(super) fn jsonata_exit(
        &mut self,
        state: &State,
        assign: Option<&jsonata::Template>,
        output: Option<&jsonata::Template>,
        states: States,
        default: &Value,
    ) -> Result<Value, ErrorCause> {
        self.pending_assign = match assign {
            Some(t) => match self.render(state, t, states)? {
                Value::Object(map) => Some(map),
                _ => None,
            },
            None => None,
        };
        match output {
            Some(t) => self.render(state, t, states),
            None => Ok(default.clone()),
        }
    }

    /// The output of a state that produced `result` (a task's, a Parallel's, a Map's): JSONata
    /// `Assign` and `Output`, or `ResultSelector`, `Assign`, `ResultPath` and `OutputPath`
    /// (`handling`: the state's `ResultSelector` and `ResultPath`). A JSONata evaluation error
    /// comes back as `Ok(Err(cause))`, for the state's Retry and Catch.
    pub(super) fn exit_with_result(
        &mut self,
        state: &State,
        handling: &ResultHandling,
        raw: &Value,
        context: &Value,
        result: Value,
    ) -> Result<Result<Value, ErrorCause>, ErrorCause> {
        if state.query_language == QueryLanguage::Jsonata {
            let states = States {
                result: Some(&result),
                ..States::new(raw, context)
            };
            let assign = state.assign.as_ref().and_then(Payload::jsonata);
            let output = state.output.as_ref();
            return match self.jsonata_exit(state, assign, output, states, &result) {
                Ok(output) => Ok(Ok(output)),
                Err(e) => match self.query_error(state, e.clone()) {
                    Some(ec) => Ok(Err(ec)),
                    None => Err(e),
                },
            };
        }
        let selected = match &handling.result_selector {
            Some(t) => t.render(
                &mut Scope::new(&result, context, self.entropy).with_variables(&self.vars),
            )?,
            None => result,
        };
        let assign = state.assign.as_ref().and_then(Payload::path);
        self.assign(assign, &selected, context)?;
        let combined = io::result_path(&handling.result_path, raw.clone(), selected)?;
        Ok(Ok(self.apply_path(
            &state.output_path,
            &combined,
            context,
        )?))
    }

    /// A JSONata state's `States.QueryEvaluationError` as a `Retry`/`Catch` sees it.
    pub(super) fn query_error(&self, state: &State, e: ErrorCause) -> Option<ErrorCause> {
        let catchable =
            state.query_language == QueryLanguage::Jsonata && e.is(names::QUERY_EVALUATION_ERROR);
        let entered = self
            .cur()
            .and_then(|c| c.entered_event_id)
            .unwrap_or_default();
        catchable.then(|| self.state_error(state, entered, e))
    }

    /// Where a caught error leads: the catcher's `Next`, with the error output placed by
    /// `ResultPath` (JSONPath) or shaped by `Output` (JSONata), and the catcher's `Assign`.
    pub(super) fn caught(
        &mut self,
        state: &State,
        catcher: &Catcher,
        raw: &Value,
        ec: ErrorCause,
    ) -> Result<Outcome, ErrorCause> {
        let error_output = json!({
            "Error": ec.error.unwrap_or_default(),
            "Cause": ec.cause.unwrap_or_default(),
        });
        let context = self.context(state);
        let output = match state.query_language {
            QueryLanguage::JsonPath => {
                let assign = catcher.assign.as_ref().and_then(Payload::path);
                self.assign(assign, &error_output, &context)?;
                io::result_path(&catcher.result_path, raw.clone(), error_output)?
            }
            QueryLanguage::Jsonata => {
                let states = States {
                    error_output: Some(&error_output),
                    ..States::new(raw, &context)
                };
                let assign = catcher.assign.as_ref().and_then(Payload::jsonata);
                let output = catcher.output.as_ref();
                self.jsonata_exit(state, assign, output, states, &error_output)?
            }
        };
        Ok(Outcome::Branch(catcher.next.clone(), output))
    }

    /// Exits a state: its `…StateExited` event, then the next state, or the end of the
    /// scope (`None` when the scope goes on).
    pub(super) fn finish_state(
        &mut self,
        state: &State,
        entered_id: u64,
        output: Result<Value, ErrorCause>,
        next: Option<String>,
    ) -> Option<ScopeEnd> {
        let output = match output {
            Ok(o) => o,
            Err(e) => return Some(ScopeEnd::Failed(self.state_error(state, entered_id, e))),
        };
        let assigned_too_deep = self.pending_assign.as_ref().is_some_and(|a| {
            a.values()
                .any(|v| crate::json::deeper_than(v, crate::json::MAX_DEPTH))
        });
        if assigned_too_deep || crate::json::deeper_than(&output, crate::json::MAX_DEPTH) {
            let cause = format!(
                "The state/task '{}' returned a result or assigned a variable nested more than {} levels deep.",
                state.name,
                crate::json::MAX_DEPTH
            );
            self.pending_assign = None;
            crate::json::dismantle(output);
            return Some(ScopeEnd::Failed(ErrorCause::new(names::RUNTIME, cause)));
        }
        let text = output.to_string();
        if text.len() > MAX_PAYLOAD_BYTES {
            let cause = format!(
                "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                state.name
            );
            let error = names::DATA_LIMIT_EXCEEDED;
            return Some(ScopeEnd::Failed(ErrorCause::new(error, cause)));
        }
        let assigned = self.pending_assign.take().filter(|a| !a.is_empty());
        let assigned_variables = assigned.as_ref().map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
                .collect()
        });
        let prev = self.last();
        self.push(
            prev,
            EventDetails::StateExited {
                state_type: state.kind.event_prefix().into(),
                name: state.name.clone(),
                output: text,
                assigned_variables,
            },
        );
        // Variables change only when the state exits: everything the state evaluated saw
        // the values it was entered with.
        self.vars.extend(assigned.unwrap_or_default());
        let now = self.now;
        match next {
            Some(next) => {
                let in_lane = !self.path.is_empty();
                if let Some(c) = self.cur_mut() {
                    let mut left = std::mem::take(&mut c.left);
                    if in_lane {
                        left.extend(c.entered_event_id);
                    }
                    *c = Current::new(next, output, now);
                    c.left = left;
                }
                None
            }
            None => Some(ScopeEnd::Done(output)),
        }
    }

    /// Evaluates an `Assign` template against `value` (the state's result, or its input for
    /// Choice and Wait); the assignment takes effect when the state exits.
    pub(super) fn assign(
        &mut self,
        assign: Option<&Template>,
        value: &Value,
        context: &Value,
    ) -> Result<(), ErrorCause> {
        self.pending_assign = match assign {
            Some(t) => match t
                .render(&mut Scope::new(value, context, self.entropy).with_variables(&self.vars))?
            {
                Value::Object(map) => Some(map),
                _ => None,
            },
            None => None,
        };
        Ok(())
    }
}
