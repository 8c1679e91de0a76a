//! OpenTelemetry traces over OTLP/HTTP with protobuf bodies (`--otlp-endpoint`): the SDK's
//! tracer provider with a batch exporter, whose tracer the engine and the API make their
//! spans with. The SDK reads its usual variables (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, ...).

use anyhow::Context;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// The exporting tracer provider; [`Traces::flush`] sends what is left when the server stops.
pub struct Traces {
    provider: SdkTracerProvider,
}

/// Starts exporting to the collector at `endpoint` (its base URL, as
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: spans go to `ENDPOINT/v1/traces`). Call it outside the
/// async runtime: the exporter's blocking HTTP client has a runtime of its own.
pub fn start(endpoint: &str) -> anyhow::Result<(Traces, engine::Tracer)> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(&url)
        .build()
        .with_context(|| format!("cannot export traces to {url}"))?;
    let resource = match std::env::var_os("OTEL_SERVICE_NAME") {
        Some(_) => Resource::builder(),
        None => Resource::builder().with_service_name("stepwise"),
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = BoxedTracer::new(Box::new(provider.tracer("stepwise")));
    Ok((Traces { provider }, engine::Tracer::new(tracer)))
}

impl Traces {
    /// Exports the spans still buffered and stops the exporter.
    pub fn flush(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces not all exported");
        }
    }
}
