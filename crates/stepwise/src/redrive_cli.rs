//! `stepwise redrive …`: the redrive extensions from the command line, through a running
//! server's extension API (`X-Amz-Target: Stepwise.<Op>`), signed with SigV4 like any AWS
//! client (credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, else `test`).

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use engine::integrations::sigv4;
use serde_json::{json, Map, Value};

/// Where the server is and how to sign for it.
#[derive(Args)]
pub struct Connection {
    /// The server's URL.
    #[arg(
        long,
        env = "STEPWISE_ENDPOINT",
        default_value = "http://127.0.0.1:8083"
    )]
    endpoint_url: String,
    /// The region requests are signed for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

#[derive(Subcommand)]
pub enum Redrive {
    /// Redrive the executions of a state machine that match a selection (`--dry-run`: only
    /// list them, with what would run again).
    Bulk(Box<Bulk>),
    /// Show a bulk redrive: its counts and what happened to each execution.
    Status {
        #[arg(long)]
        batch_token: String,
        /// Executions per page (the server's default: 100).
        #[arg(long)]
        max_results: Option<u32>,
        #[arg(long)]
        next_token: Option<String>,
    },
    /// Redrive one execution from a chosen state (`State` or `State/lane/State…`), with a new
    /// input for that state, and/or onto another definition.
    From {
        #[arg(long)]
        execution_arn: String,
        #[arg(long)]
        state_path: Option<String>,
        /// The state's new input (JSON).
        #[arg(long)]
        input: Option<String>,
        /// Continue on `current` (the state machine's current revision) or a version ARN.
        #[arg(long, value_parser = parse_definition)]
        definition: Option<String>,
        #[arg(long)]
        client_token: Option<String>,
    },
    /// Show whether an execution can be redriven, what would run again and its redrives.
    Describe {
        #[arg(long)]
        execution_arn: String,
    },
}

#[derive(Args)]
pub struct Bulk {
    #[arg(long)]
    state_machine_arn: String,
    /// FAILED, TIMED_OUT, ABORTED, SUCCEEDED or RUNNING (repeatable; default: the first three).
    #[arg(long = "status")]
    statuses: Vec<String>,
    /// The execution's error name.
    #[arg(long)]
    error_name: Option<String>,
    /// A substring of the execution's cause.
    #[arg(long)]
    cause_contains: Option<String>,
    /// Stopped at or after (e.g. 2026-12-03T12:00:00Z).
    #[arg(long, value_parser = parse_time)]
    stopped_after: Option<f64>,
    /// Stopped at or before.
    #[arg(long, value_parser = parse_time)]
    stopped_before: Option<f64>,
    #[arg(long)]
    min_redrive_count: Option<u32>,
    #[arg(long)]
    max_redrive_count: Option<u32>,
    /// List what would be redriven, redrive nothing.
    #[arg(long)]
    dry_run: bool,
    /// Names the batch: the same token and selection again resumes or reports it, never
    /// redrives twice. Required without --dry-run.
    #[arg(long, required_unless_present = "dry_run")]
    batch_token: Option<String>,
}

/// An RFC 3339 time as epoch seconds.
fn parse_time(text: &str) -> Result<f64, String> {
    asl::timestamp::parse(text)
        .map(|ms| ms as f64 / 1000.0)
        .ok_or_else(|| format!("invalid time '{text}': use e.g. 2026-12-03T12:00:00Z"))
}

/// `current` (any case) as the API's `CURRENT`; anything else is a version ARN.
fn parse_definition(text: &str) -> Result<String, String> {
    Ok(match text.eq_ignore_ascii_case("current") {
        true => "CURRENT".into(),
        false => text.into(),
    })
}

/// Runs a `redrive` subcommand and prints the server's answer.
pub fn run(connection: Connection, command: Redrive) -> anyhow::Result<()> {
    let (op, body) = match command {
        Redrive::Bulk(b) => {
            let mut body = Map::new();
            body.insert("stateMachineArn".into(), json!(b.state_machine_arn));
            if !b.statuses.is_empty() {
                body.insert("statusFilter".into(), json!(b.statuses));
            }
            let optional = [
                ("errorName", b.error_name.map(Value::from)),
                ("causeContains", b.cause_contains.map(Value::from)),
                ("stoppedAfter", b.stopped_after.map(Value::from)),
                ("stoppedBefore", b.stopped_before.map(Value::from)),
                ("minRedriveCount", b.min_redrive_count.map(Value::from)),
                ("maxRedriveCount", b.max_redrive_count.map(Value::from)),
                ("batchToken", b.batch_token.map(Value::from)),
                ("dryRun", b.dry_run.then_some(Value::Bool(true))),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    body.insert(key.into(), v);
                }
            }
            ("BulkRedrive", Value::Object(body))
        }
        Redrive::Status {
            batch_token,
            max_results,
            next_token,
        } => {
            let mut body = json!({ "batchToken": batch_token });
            if let Some(n) = max_results {
                body["maxResults"] = json!(n);
            }
            if let Some(t) = next_token {
                body["nextToken"] = json!(t);
            }
            ("DescribeBulkRedrive", body)
        }
        Redrive::From {
            execution_arn,
            state_path,
            input,
            definition,
            client_token,
        } => {
            let mut body = json!({ "executionArn": execution_arn });
            let optional = [
                ("statePath", state_path),
                ("input", input),
                ("definition", definition),
                ("clientToken", client_token),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    body[key] = json!(v);
                }
            }
            ("RedriveExecutionFromState", body)
        }
        Redrive::Describe { execution_arn } => (
            "DescribeExecutionRedrives",
            json!({ "executionArn": execution_arn }),
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(call(&connection, op, &body))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// Calls `Stepwise.<op>` and returns the answer, or fails with the server's error.
async fn call(c: &Connection, op: &str, body: &Value) -> anyhow::Result<Value> {
    let url = format!("{}/", c.endpoint_url.trim_end_matches('/'));
    let parsed = reqwest::Url::parse(&url)
        .with_context(|| format!("invalid endpoint '{}'", c.endpoint_url))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (host, None) => host.unwrap_or_default().to_owned(),
        (None, Some(_)) => bail!("invalid endpoint '{}': no host", c.endpoint_url),
    };
    let target = format!("Stepwise.{op}");
    let payload = body.to_string();
    let unsigned = [
        ("host", host.as_str()),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", target.as_str()),
    ];
    let scope = sigv4::Scope {
        region: &c.region,
        service: "states",
    };
    let signed = sigv4::headers(
        &sigv4::env_credentials(),
        &scope,
        "POST",
        &url,
        &unsigned,
        payload.as_bytes(),
    )
    .map_err(anyhow::Error::msg)?;
    let mut request = reqwest::Client::new().post(&url).body(payload);
    for (name, value) in unsigned.iter().skip(1) {
        request = request.header(*name, *value);
    }
    for (name, value) in signed {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {}", c.endpoint_url))?;
    let ok = response.status().is_success();
    let text = response.text().await?;
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("the server answered something else than JSON: {text}"))?;
    if !ok {
        let code = answer["__type"].as_str().unwrap_or("error");
        let code = code.rsplit('#').next().unwrap_or(code);
        let message = answer["message"].as_str().unwrap_or_default();
        bail!("{code}: {message}");
    }
    Ok(answer)
}
