//! Request spans, when traces are on (`--otlp-endpoint`): one server span per `POST /`,
//! named after the operation, with its status code and AWS error code. The span is the
//! current OpenTelemetry context while the operation runs, so the run an operation starts
//! (StartExecution, RedriveExecution) is its child (see the engine's `spans`). A request
//! that carries a W3C `traceparent` header joins the caller's trace: its span is the child
//! of the caller's.

use axum::http::{HeaderMap, StatusCode};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::Value;

use crate::error::ApiError;
use crate::validate::Service;

/// Starts the span of a request for `operation` (`None`: a target no service has), under
/// the trace its `traceparent` header names, if any.
pub(crate) fn begin(
    tracer: &engine::Tracer,
    headers: &HeaderMap,
    operation: Option<(Service, &str)>,
) -> Context {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let tracer = tracer.otel();
    let (service, name) = match operation {
        Some((Service::StepFunctions, op)) => ("AWSStepFunctions", op),
        Some((Service::Stepwise, op)) => ("Stepwise", op),
        None => ("AWSStepFunctions", "UnknownOperation"),
    };
    let span = tracer
        .span_builder(name.to_owned())
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("rpc.system", "aws-api"),
            KeyValue::new("rpc.service", service),
            KeyValue::new("rpc.method", name.to_owned()),
            KeyValue::new("http.request.method", "POST"),
        ])
        .start_with_context(tracer, &parent);
    Context::new().with_span(span)
}

/// A request's headers, as the propagator reads them (a value that is not text is absent).
struct Headers<'h>(&'h HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Ends a request's span with what it answered.
pub(crate) fn finish(cx: &Context, result: &Result<Value, ApiError>, request_id: &str) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("aws.request_id", request_id.to_owned()));
    let status = match result {
        Ok(reply) => {
            let started = reply.get("executionArn").and_then(Value::as_str);
            if let Some(arn) = started {
                span.set_attribute(KeyValue::new(
                    engine::span_attribute::EXECUTION_ARN,
                    arn.to_owned(),
                ));
            }
            StatusCode::OK
        }
        Err(e) => {
            let code = e.type_name.rsplit('#').next().unwrap_or(&e.type_name);
            span.set_attribute(KeyValue::new("error.type", code.to_owned()));
            span.set_status(Status::error(e.message.clone()));
            e.status
        }
    };
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    span.end();
}
