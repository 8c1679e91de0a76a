//! A minimal Step Functions client: AWS JSON 1.0 over plain HTTP, so the same run can target
//! stepwise, LocalStack or anything else that speaks the protocol.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// A fixed, unverified SigV4 header: servers take the region from its credential scope.
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/states/aws4_request, SignedHeaders=host, Signature=0";
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/stepwise-bench";

/// How calls spread over the nodes of one service.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Balance {
    /// Each call goes to the next node, as behind a load balancer that spreads requests.
    Request,
    /// Each activity worker keeps to one node (the next in turn), as behind one that spreads
    /// connections: a worker's keep-alive connection carries its polls and its answers.
    Connection,
}

#[derive(Clone)]
pub struct Sfn {
    http: reqwest::Client,
    /// Nodes of one service: each call goes to the next.
    endpoints: Arc<[String]>,
    next: Arc<AtomicUsize>,
    balance: Balance,
}

impl Sfn {
    pub fn new(endpoints: Vec<String>, balance: Balance) -> Result<Sfn> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?;
        if endpoints.is_empty() {
            bail!("no endpoint");
        }
        Ok(Sfn {
            http,
            endpoints: endpoints.into(),
            next: Arc::default(),
            balance,
        })
    }

    /// The client of one activity worker: with [`Balance::Connection`], one that calls the
    /// next node only.
    pub fn for_worker(&self) -> Sfn {
        match self.balance {
            Balance::Request => self.clone(),
            Balance::Connection => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                let endpoint = self.endpoints[turn % self.endpoints.len()].clone();
                Sfn {
                    endpoints: Arc::new([endpoint]),
                    next: Arc::default(),
                    ..self.clone()
                }
            }
        }
    }

    /// Calls `AWSStepFunctions.<op>`; an AWS error response becomes an `Err` naming its type.
    pub async fn call(&self, op: &str, body: &Value) -> Result<Value> {
        self.call_target(&format!("AWSStepFunctions.{op}"), body)
            .await
    }

    /// Calls one of stepwise's own operations, `Stepwise.<op>`.
    pub async fn call_stepwise(&self, op: &str, body: &Value) -> Result<Value> {
        self.call_target(&format!("Stepwise.{op}"), body).await
    }

    async fn call_target(&self, target: &str, body: &Value) -> Result<Value> {
        let op = target;
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let endpoint = &self.endpoints[turn % self.endpoints.len()];
        let response = self
            .http
            .post(endpoint)
            .header("X-Amz-Target", target)
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("Authorization", AUTHORIZATION)
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("{op}: no answer from {endpoint}"))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{op}: HTTP {status} {} {}",
                value["__type"],
                value["message"]
            );
        }
        Ok(value)
    }

    /// Creates a state machine and returns its ARN.
    pub async fn create_machine(
        &self,
        name: &str,
        kind: &str,
        definition: &Value,
    ) -> Result<String> {
        let out = self
            .call(
                "CreateStateMachine",
                &json!({"name": name, "type": kind, "roleArn": ROLE_ARN,
                        "definition": definition.to_string()}),
            )
            .await?;
        arn(&out, "stateMachineArn")
    }

    /// Starts a standard execution with `{}` as its input and returns its ARN.
    pub async fn start(&self, machine: &str) -> Result<String> {
        self.start_with(machine, &json!({})).await
    }

    /// Starts a standard execution with this input and returns its ARN.
    pub async fn start_with(&self, machine: &str, input: &Value) -> Result<String> {
        let out = self
            .call(
                "StartExecution",
                &json!({"stateMachineArn": machine, "input": input.to_string()}),
            )
            .await?;
        arn(&out, "executionArn")
    }

    /// Polls DescribeExecution every millisecond until the execution leaves RUNNING; returns
    /// the DescribeExecution answer.
    pub async fn until_done(&self, execution: &str) -> Result<Value> {
        let request = json!({"executionArn": execution});
        loop {
            let out = self.call("DescribeExecution", &request).await?;
            if out["status"] != "RUNNING" {
                return Ok(out);
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Pages through GetExecutionHistory (newest first when `reverse`), handing each event to
    /// `visit` until it returns `false`; returns how many pages were read.
    pub async fn history(
        &self,
        execution: &str,
        reverse: bool,
        mut visit: impl FnMut(&Value) -> bool,
    ) -> Result<usize> {
        let mut request =
            json!({"executionArn": execution, "reverseOrder": reverse, "maxResults": 1000});
        let mut pages = 0;
        loop {
            let page = self.call("GetExecutionHistory", &request).await?;
            pages += 1;
            for event in page["events"].as_array().into_iter().flatten() {
                if !visit(event) {
                    return Ok(pages);
                }
            }
            match page.get("nextToken") {
                Some(token) if !token.is_null() => request["nextToken"] = token.clone(),
                _ => return Ok(pages),
            }
        }
    }

    /// How many executions of `machine` have the given status (pages through ListExecutions).
    pub async fn count(&self, machine: &str, status: &str) -> Result<usize> {
        let mut request =
            json!({"stateMachineArn": machine, "statusFilter": status, "maxResults": 1000});
        let mut total = 0;
        loop {
            let page = self.call("ListExecutions", &request).await?;
            total += page["executions"].as_array().map_or(0, Vec::len);
            match page.get("nextToken") {
                Some(token) if !token.is_null() => request["nextToken"] = token.clone(),
                _ => return Ok(total),
            }
        }
    }
}

fn arn(out: &Value, field: &str) -> Result<String> {
    out[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("response without {field}: {out}"))
}
