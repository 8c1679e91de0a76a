//! The `dynamodb-chain` scenario: what the engine adds to an integration call. Executions of
//! a chain of DynamoDB `putItem` Tasks (the optimized integration) run one at a time against
//! a local DynamoDB (moto, started here, or `--dynamodb-endpoint`), Express ones through
//! StartSyncExecution (nothing stored) and Standard ones (one durable transition per state);
//! the same PutItem sent directly from here measures the service's own latency. The overhead
//! per call is an execution's time (its `stopDate` − `startDate`, as the server records them)
//! divided by its Tasks, minus the direct call's median.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use tokio::process::{Child, Command};

use crate::report::{Latency, Report};
use crate::scenarios::Bench;

/// Direct PutItems measured for the service's own latency.
const DIRECT_CALLS: usize = 200;

/// moto's server (`python3 -m moto.server`) on a free port, killed when dropped.
pub struct Moto {
    _child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub async fn start() -> Result<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start python3 -m moto.server (pip install 'moto[server]')")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = format!("{endpoint}/moto-api/");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reqwest::get(&probe)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if let Some(status) = child.try_wait()? {
                bail!("moto exited: {status} (is moto[server] installed?)");
            }
            if Instant::now() > deadline {
                bail!("moto did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Moto {
            _child: child,
            endpoint,
        })
    }
}

/// DynamoDB's JSON API, called directly.
struct Dynamo {
    http: reqwest::Client,
    endpoint: String,
}

impl Dynamo {
    /// One call. moto reads the caller from the `Authorization` header without checking the
    /// signature, so a SigV4-shaped header is enough.
    async fn call(&self, action: &str, body: &Value) -> Result<Value> {
        let resp = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{action}"))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=00",
            )
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{action}: {status} {value}");
        }
        Ok(value)
    }
}

/// `tasks` DynamoDB `putItem` Tasks into `table`, one after another.
fn put_chain(tasks: usize, table: &str) -> Value {
    let mut states = Map::new();
    for i in 0..tasks {
        let mut state = json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {"TableName": table, "Item": {"id": {"S": format!("item-{i}")}}},
            "ResultPath": null});
        match i + 1 < tasks {
            true => state["Next"] = json!(format!("Put{}", i + 1)),
            false => state["End"] = json!(true),
        }
        states.insert(format!("Put{i}"), state);
    }
    json!({"StartAt": "Put0", "States": states})
}

/// An answer's `startDate` to `stopDate` (epoch seconds), in microseconds.
fn duration_us(out: &Value) -> Result<u64> {
    let date = |f: &str| out[f].as_f64().with_context(|| format!("no {f} in {out}"));
    Ok(((date("stopDate")? - date("startDate")?) * 1e6).max(0.0) as u64)
}

impl Bench {
    pub(crate) async fn dynamodb_chain(&self) -> Result<Vec<Report>> {
        let endpoint = self.dynamodb.clone().context(
            "dynamodb-chain needs --dynamodb-endpoint (the server's DynamoDB endpoint) \
             unless the bench spawns the server",
        )?;
        let (n, k) = (self.sizes.dynamodb_executions, self.sizes.dynamodb_tasks);
        if k == 0 {
            bail!("--dynamodb-tasks must be at least 1");
        }
        let dynamo = Dynamo {
            http: reqwest::Client::new(),
            endpoint,
        };
        let table = self.name("dynamodb-chain");
        dynamo
            .call(
                "CreateTable",
                &json!({"TableName": table, "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]}),
            )
            .await?;
        let mut direct = Histogram::<u64>::new(3)?;
        for i in 0..DIRECT_CALLS {
            let item = json!({"TableName": table, "Item": {"id": {"S": format!("direct-{i}")}}});
            let began = Instant::now();
            dynamo.call("PutItem", &item).await?;
            direct.record(began.elapsed().as_micros() as u64)?;
        }
        let direct_p50 = direct.value_at_quantile(0.5);
        let mut reports = Vec::new();
        for kind in ["EXPRESS", "STANDARD"] {
            let name = self.name(&format!("dynamodb-chain-{}", kind.to_lowercase()));
            let machine = self
                .sfn
                .create_machine(&name, kind, &put_chain(k, &table))
                .await?;
            let mut per_task = Histogram::<u64>::new(3)?;
            for _ in 0..n {
                let out = match kind {
                    "EXPRESS" => {
                        let request = json!({"stateMachineArn": machine, "input": "{}"});
                        self.sfn.call("StartSyncExecution", &request).await?
                    }
                    _ => {
                        let execution = self.sfn.start(&machine).await?;
                        self.sfn.until_done(&execution).await?
                    }
                };
                if out["status"] != "SUCCEEDED" {
                    bail!("a {kind} execution ended {}", out);
                }
                per_task.record(duration_us(&out)? / k as u64)?;
            }
            let task_p50 = per_task.value_at_quantile(0.5);
            let overhead_ms = (task_p50 as f64 - direct_p50 as f64) / 1000.0;
            let mut r = Report::new(
                format!("dynamodb-chain {} {n}×{k}", kind.to_lowercase()),
                "overhead ≤ 1 ms per call",
            );
            r.latency = Some(("per putItem Task", Latency::of(&per_task)));
            r.rss_mib = self.server.rss_mib();
            r.note = format!(
                "overhead per call {overhead_ms:.3} ms (Task p50 − direct PutItem p50 {:.3} ms)",
                direct_p50 as f64 / 1000.0
            );
            reports.push(r);
        }
        Ok(reports)
    }
}
