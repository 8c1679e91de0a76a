//! Wait states: when a wait ends (`Seconds`, `Timestamp`, their `…Path` and JSONata forms)
//! and what the state outputs then.

use serde_json::Value;

use crate::definition::{Payload, QueryLanguage, State, WaitFor};
use crate::error::ErrorCause;
use crate::jsonata::States;
use crate::timestamp;

use super::{select, Run};

impl<'a> Run<'a> {
    pub(super) fn wait_output(&mut self, state: &State, raw: &Value) -> Result<Value, ErrorCause> {
        let context = self.context(state);
        if state.query_language == QueryLanguage::Jsonata {
            let assign = state.assign.as_ref().and_then(Payload::jsonata);
            let states = States::new(raw, &context);
            return self.jsonata_exit(state, assign, state.output.as_ref(), states, raw);
        }
        let effective = self.apply_path(&state.input_path, raw, &context)?;
        let assign = state.assign.as_ref().and_then(Payload::path);
        self.assign(assign, &effective, &context)?;
        self.apply_path(&state.output_path, &effective, &context)
    }

    pub(super) fn wait_until(
        &mut self,
        state: &State,
        wait: &WaitFor,
        input: &Value,
        ctx: &Value,
    ) -> Result<i64, ErrorCause> {
        let entered = self.cur().map(|c| c.entered_time).unwrap_or(self.now);
        let scale = self.limits.wait_time_scale;
        let from_timestamp = |ms: i64| {
            // Scaled relative to the state's entry, so `--wait-time-scale` shortens it too.
            entered.saturating_add((ms.saturating_sub(entered).max(0) as f64 * scale) as i64)
        };
        match wait {
            WaitFor::Seconds(s) => Ok(entered.saturating_add(self.scaled(*s))),
            WaitFor::Timestamp(ms) => Ok(from_timestamp(*ms)),
            WaitFor::SecondsJsonata(t) => {
                let states = States::new(input, ctx);
                let seconds = self.jsonata_integer(state, t, "Seconds", states, (0, 99_999_999))?;
                Ok(entered.saturating_add(self.scaled(seconds as u64)))
            }
            WaitFor::TimestampJsonata(t) => {
                let value = self.render(state, t, States::new(input, ctx))?;
                let Value::String(text) = &value else {
                    let e = t.unexpected_type("Timestamp", "string", &value);
                    return Err(self.evaluation_failed(state, e));
                };
                match timestamp::parse(text) {
                    Some(ms) => Ok(from_timestamp(ms)),
                    None => {
                        let e = ErrorCause::query(
                            format!("The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"),
                            Some("Timestamp".into()),
                        );
                        Err(self.evaluation_failed(state, e))
                    }
                }
            }
            WaitFor::SecondsPath(path) => {
                let value = select(path, input, ctx, &self.vars).ok_or_else(|| {
                    ErrorCause::runtime(format!(
                        "The SecondsPath parameter does not reference an input value: {}",
                        path.text()
                    ))
                })?;
                let seconds = value.as_i64().filter(|_| !value.is_f64()).ok_or_else(|| {
                    ErrorCause::runtime(format!(
                        "The SecondsPath parameter cannot be parsed as a long value: {} == {}",
                        path.text(),
                        value
                    ))
                })?;
                if seconds < 0 {
                    return Err(ErrorCause::runtime(format!(
                        "The SecondsPath parameter references a negative value: {} == {}",
                        path.text(),
                        seconds
                    )));
                }
                Ok(entered.saturating_add(self.scaled(seconds as u64)))
            }
            WaitFor::TimestampPath(path) => {
                let value = select(path, input, ctx, &self.vars);
                let parsed = value
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(timestamp::parse);
                match parsed {
                    Some(ms) => Ok(from_timestamp(ms)),
                    None => Err(ErrorCause::runtime(format!(
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {}",
                        path.text(),
                        value.map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        }).unwrap_or_else(|| "null".into())
                    ))),
                }
            }
        }
    }
}
