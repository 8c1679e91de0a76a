//! JSONata states, and the JSONPath `…Path` fields that read numbers from the input, through
//! the pure interpreter: definition + input (+ task results) → history.

use asl::definition::Definition;
use asl::history::{EventDetails, HistoryEvent};
use asl::interpreter::{advance, ExecutionInfo, Limits, Runtime, Signal, Status, TaskOutcome};
use asl::Entropy;
use serde_json::{json, Value};

const NOW: i64 = 1_707_313_922_123;

struct Execution {
    def: Definition,
    info: ExecutionInfo,
    rt: Runtime,
    events: Vec<HistoryEvent>,
    entropy: Entropy,
}

impl Execution {
    fn start(definition: Value, input: Value) -> Execution {
        let def = Definition::parse(&definition.to_string()).unwrap_or_else(|d| panic!("{d:?}"));
        let info = ExecutionInfo {
            execution_arn: "arn:aws:states:us-east-1:123456789012:execution:sm:e".into(),
            name: "e".into(),
            state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:sm".into(),
            state_machine_name: "sm".into(),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            start_time: NOW,
            input_text: input.to_string(),
            input,
            redrive_count: 0,
            redrive_time: None,
            state_machine_version_arn: None,
            state_machine_alias_arn: None,
        };
        let mut e = Execution {
            def,
            info,
            rt: Runtime::new(),
            events: Vec::new(),
            entropy: Entropy::new(3),
        };
        e.signal(Signal::Start);
        e
    }

    fn signal(&mut self, signal: Signal) {
        let out = advance(
            &self.def,
            &self.info,
            &mut self.rt,
            signal,
            NOW,
            &mut self.entropy,
            Limits {
                wait_time_scale: 0.0,
                ..Limits::default()
            },
        );
        self.events.extend(out.events);
    }

    /// Completes the pending task with `outcome`; returns the input it was dispatched with.
    fn finish_task(&mut self, outcome: TaskOutcome) -> Value {
        let task = self.rt.pending_tasks()[0].clone();
        let input = task.dispatch.map(|d| d.input).unwrap_or_default();
        self.signal(Signal::TaskFinished {
            task_id: task.id,
            outcome,
        });
        input
    }

    fn output(&self) -> Value {
        self.rt
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default()
    }

    fn types(&self) -> Vec<String> {
        self.events.iter().map(|e| e.details.event_type()).collect()
    }

    fn assigned(&self, state: &str) -> Value {
        self.events
            .iter()
            .find_map(|e| match &e.details {
                EventDetails::StateExited {
                    name,
                    assigned_variables: Some(vars),
                    ..
                } if name == state => Some(Value::Object(vars.clone())),
                _ => None,
            })
            .unwrap_or_default()
    }
}

fn jsonata(states: Value) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": states})
}

#[test]
fn task_arguments_output_and_assign_see_states_and_variables() {
    let def = jsonata(json!({
        "S": {"Type": "Pass", "Assign": {"factor": 3}, "Next": "T"},
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {"n": "{% $states.input.n * $factor %}", "name": "{% $states.context.Execution.Name %}"},
            "TimeoutSeconds": "{% $factor * 10 %}",
            "Assign": {"seen": "{% $states.result.value %}", "factor": "{% $factor + 1 %}"},
            "Output": {"result": "{% $states.result.value %}", "before": "{% $factor %}"},
            "Next": "After"
        },
        "After": {"Type": "Pass", "Output": {"factor": "{% $factor %}", "seen": "{% $seen %}", "in": "{% $states.input %}"}, "End": true}
    }));
    let mut e = Execution::start(def, json!({"n": 2}));
    let sent = e.finish_task(TaskOutcome::Succeeded(json!({"value": "ok"})));
    assert_eq!(sent, json!({"n": 6, "name": "e"}));
    assert_eq!(e.rt.status, Status::Succeeded);
    // Assign and Output both saw the variables as they were when the state was entered.
    assert_eq!(
        e.output(),
        json!({"factor": 4, "seen": "ok", "in": {"result": "ok", "before": 3}})
    );
    assert_eq!(e.assigned("T"), json!({"seen": "\"ok\"", "factor": "4"}));
    let scheduled = e.events.iter().find_map(|ev| match &ev.details {
        EventDetails::TaskScheduled { timeout, .. } => Some(*timeout),
        _ => None,
    });
    assert_eq!(scheduled, Some(Some(30)));
}

#[test]
fn catch_output_and_assign_see_the_error_output() {
    let def = jsonata(json!({
        "S": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Catch": [{
                "ErrorEquals": ["States.ALL"],
                "Assign": {"why": "{% $states.errorOutput.Cause %}"},
                "Output": {"error": "{% $states.errorOutput.Error %}", "input": "{% $states.input %}"},
                "Next": "Done"
            }],
            "End": true
        },
        "Done": {"Type": "Pass", "Output": {"from": "{% $states.input %}", "why": "{% $why %}"}, "End": true}
    }));
    let mut e = Execution::start(def, json!({"k": 1}));
    e.finish_task(TaskOutcome::Failed(asl::history::ErrorCause::new(
        "Boom", "it broke",
    )));
    assert_eq!(
        e.output(),
        json!({"from": {"error": "Boom", "input": {"k": 1}}, "why": "it broke"})
    );
}

#[test]
fn a_query_evaluation_error_in_output_can_be_caught() {
    let def = jsonata(json!({
        "S": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Output": "{% $states.result.missing %}",
            "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Done"}],
            "End": true
        },
        "Done": {"Type": "Succeed"}
    }));
    let mut e = Execution::start(def, json!({}));
    e.finish_task(TaskOutcome::Succeeded(json!({})));
    assert_eq!(e.rt.status, Status::Succeeded);
    assert!(e.types().contains(&"EvaluationFailed".to_owned()));
    assert_eq!(
        e.output(),
        json!({
            "Error": "States.QueryEvaluationError",
            "Cause": "An error occurred while executing the state 'S' (entered at the event id #2). The JSONata expression '$states.result.missing' specified for the field 'Output' returned nothing (undefined)."
        })
    );
}

#[test]
fn choice_conditions_rule_outputs_and_default() {
    let def = jsonata(json!({
        "S": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $states.input.n > 10 %}", "Output": {"big": true}, "Assign": {"size": "big"}, "Next": "Done"},
                {"Condition": "{% $states.input.n > 5 %}", "Next": "Done"}
            ],
            "Default": "Done",
            "Output": {"state": "{% $states.input.n %}"},
            "Assign": {"size": "other"}
        },
        "Done": {"Type": "Pass", "Output": {"in": "{% $states.input %}", "size": "{% $size %}"}, "End": true}
    }));
    let run = |n: i64| Execution::start(def.clone(), json!({"n": n})).output();
    assert_eq!(run(11), json!({"in": {"big": true}, "size": "big"}));
    assert_eq!(run(6), json!({"in": {"state": 6}, "size": "other"}));
    assert_eq!(run(1), json!({"in": {"state": 1}, "size": "other"}));

    let not_boolean = jsonata(json!({
        "S": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "Done"}], "Default": "Done"},
        "Done": {"Type": "Succeed"}
    }));
    let e = Execution::start(not_boolean, json!({"n": 1}));
    assert_eq!(e.rt.status, Status::Failed);
    assert_eq!(
        e.rt.cause.as_deref(),
        Some("An error occurred while executing the state 'S' (entered at the event id #2). The JSONata expression '$states.input.n' specified for the field 'Choices[0]/Condition' returned an unexpected result type. Expected 'boolean', but was 'number' for value: 1")
    );
}

#[test]
fn map_items_item_selector_and_max_concurrency() {
    let def = jsonata(json!({
        "S": {
            "Type": "Map",
            "Items": "{% $states.input.list[$ > 1] %}",
            "MaxConcurrency": "{% 1 %}",
            "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}", "i": "{% $states.context.Map.Item.Index %}", "k": "{% $states.input.k %}"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": "{% $states.input.v * 10 + $states.input.i %}", "End": true}}},
            "Output": {"sum": "{% $sum($states.result) %}", "all": "{% $states.result %}"},
            "End": true
        }
    }));
    let e = Execution::start(def, json!({"list": [1, 2, 3], "k": "x"}));
    assert_eq!(e.output(), json!({"sum": 51, "all": [20, 31]}));
}

#[test]
fn parallel_arguments_reach_every_branch() {
    let branch = |label: &str| json!({"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": {"label": label, "got": "{% $states.input.x %}"}, "End": true}}});
    let def = jsonata(json!({
        "S": {
            "Type": "Parallel",
            "Arguments": {"x": "{% $states.input.a + 1 %}"},
            "Branches": [branch("one"), branch("two")],
            "Output": "{% $states.result.got %}",
            "End": true
        }
    }));
    let e = Execution::start(def, json!({"a": 1}));
    assert_eq!(e.output(), json!([2, 2]));
}

#[test]
fn wait_seconds_and_fail_fields() {
    let def = jsonata(json!({
        "S": {"Type": "Wait", "Seconds": "{% $states.input.s %}", "Output": {"waited": true}, "Next": "F"},
        "F": {"Type": "Fail", "Error": "{% 'Custom.' & $states.input.waited %}", "Cause": "{% $string($states.input) %}"}
    }));
    let mut e = Execution::start(def, json!({"s": 1}));
    e.signal(Signal::Wake);
    assert_eq!(e.rt.status, Status::Failed);
    assert_eq!(e.rt.error.as_deref(), Some("Custom.true"));
    assert_eq!(e.rt.cause.as_deref(), Some("{\"waited\":true}"));

    let negative = jsonata(json!({"S": {"Type": "Wait", "Seconds": "{% -1 %}", "End": true}}));
    let e = Execution::start(negative, json!({}));
    assert_eq!(e.rt.error.as_deref(), Some("States.QueryEvaluationError"));
    assert_eq!(
        e.types(),
        [
            "ExecutionStarted",
            "WaitStateEntered",
            "EvaluationFailed",
            "ExecutionFailed"
        ]
    );
}

#[test]
fn evaluation_failed_events_follow_aws() {
    let def = jsonata(json!({
        "S": {"Type": "Pass", "Next": "T"},
        "T": {"Type": "Pass", "Output": {"r": "{% $nope %}"}, "End": true}
    }));
    let e = Execution::start(def, json!({}));
    let failed = e
        .events
        .iter()
        .find(|ev| ev.details.event_type() == "EvaluationFailed")
        .expect("an EvaluationFailed event");
    // It follows the event before the state was entered (AWS's quirk).
    assert_eq!((failed.id, failed.previous_event_id), (5, 3));
    assert_eq!(
        failed.details,
        EventDetails::EvaluationFailed {
            state: "T".into(),
            error: "States.QueryEvaluationError".into(),
            cause: "An error occurred while executing the state 'T' (entered at the event id #4). The JSONata expression '$nope' specified for the field 'Output/r' returned nothing (undefined).".into(),
            location: Some("Output/r".into()),
        }
    );
}

#[test]
fn jsonpath_and_jsonata_states_mix() {
    let def = json!({
        "StartAt": "Path",
        "States": {
            "Path": {"Type": "Pass", "Parameters": {"v.$": "$.a"}, "Assign": {"x.$": "$.v"}, "Next": "Ata"},
            "Ata": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"sum": "{% $states.input.v + $x %}"}, "Next": "Back"},
            "Back": {"Type": "Pass", "OutputPath": "$.sum", "End": true}
        }
    });
    let e = Execution::start(def, json!({"a": 20}));
    assert_eq!(e.output(), json!(40));
}

#[test]
fn now_and_random_are_the_injected_ones() {
    let def = jsonata(json!({
        "S": {"Type": "Pass", "Output": {"now": "{% $now() %}", "r": "{% $random() %}", "u": "{% $uuid() %}"}, "End": true}
    }));
    let a = Execution::start(def.clone(), json!({})).output();
    let b = Execution::start(def, json!({})).output();
    assert_eq!(a["now"], json!("2024-02-07T13:52:02.123Z"));
    // Same seed, same values: the interpreter is replayable.
    assert_eq!(a, b);
}

/// `MaxConcurrencyPath`: a float is truncated and an integer in a string read (as AWS does);
/// a negative number and anything else fail the execution with AWS's texts.
#[test]
fn max_concurrency_path_coercions() {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.max",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    }}});
    let cases = [
        (json!(2.7), None),
        (json!("3"), None),
        (json!(0), None),
        (
            json!(-1),
            Some("Expected non-negative integer for MaxConcurrency, got '-1' instead."),
        ),
        (
            json!("x"),
            Some("The MaxConcurrencyPath field refers to value \"x\" which is not a valid integer: $.max"),
        ),
        (
            json!({}),
            Some("The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: $.max"),
        ),
    ];
    for (max, failure) in cases {
        let e = Execution::start(def.clone(), json!({"items": [1, 2], "max": max}));
        match failure {
            None => assert_eq!(e.rt.status, Status::Succeeded, "{max}: {:?}", e.rt.cause),
            Some(cause) => {
                assert_eq!(e.rt.status, Status::Failed, "{max}");
                assert_eq!(e.rt.error.as_deref(), Some("States.Runtime"), "{max}");
                let got = e.rt.cause.as_deref().unwrap_or_default();
                assert!(got.ends_with(cause), "{max}: {got}");
            }
        }
    }
}

/// `ToleratedFailureCountPath`/`ToleratedFailurePercentagePath` refused as AWS words it: a
/// string value quoted as it is, a percentage named a float.
#[test]
fn tolerated_failure_path_messages() {
    let map = |field: &str| {
        json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "ItemsPath": "$.items", field: "$.t",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}
            },
            "End": true
        }}})
    };
    let cases = [
        ("ToleratedFailurePercentagePath", json!("NoNumber"), "The ToleratedFailurePercentagePath field refers to value \"NoNumber\" which is not a valid float: $.t"),
        ("ToleratedFailurePercentagePath", json!({}), "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: $.t"),
        ("ToleratedFailurePercentagePath", json!(100.1), "ToleratedFailurePercentage must be between 0 and 100."),
        ("ToleratedFailureCountPath", json!(-1), "ToleratedFailureCount cannot be negative."),
        ("ToleratedFailureCountPath", json!([1]), "The ToleratedFailureCountPath field refers to value \"[1]\" which is not a valid integer: $.t"),
    ];
    for (field, t, cause) in cases {
        let e = Execution::start(map(field), json!({"items": [1], "t": t}));
        assert_eq!(e.rt.status, Status::Failed, "{field} {t}");
        let got = e.rt.cause.as_deref().unwrap_or_default();
        assert!(got.ends_with(cause), "{field} {t}: {got}");
    }
}
