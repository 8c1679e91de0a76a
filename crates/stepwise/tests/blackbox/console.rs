//! The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `scripts/setup-test-deps`), driven through chromedriver with fantoccini. The
//! tests read the DOM the page builds from the AWS API; screenshots of each page are saved under
//! `target/console-screenshots/` (`STEPWISE_UPDATE_CONSOLE_PNG=1` also writes the execution
//! page to `docs/console.png`, the README's picture).

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_machine, free_port, start, wait_done, Options, Server, StoreKind};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const DONE_WITHIN: Duration = Duration::from_secs(30);
const PAGE_WITHIN: Duration = Duration::from_secs(20);

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let path = PathBuf::from(dir).join(name);
            if path.exists() {
                return path;
            }
        }
    }
    panic!("none of {names:?} is installed: run scripts/setup-test-deps (Debian's chromium and chromium-driver)")
}

/// Starts chromedriver and a headless Chromium session with a fresh profile.
async fn browser() -> (Driver, Client) {
    let chromedriver = find_binary(&["chromedriver"]);
    let chromium = find_binary(&["chromium", "chromium-browser"]);
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let profile = tempfile::tempdir().expect("a Chromium profile directory");
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let args = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--window-size=1400,1000".to_owned(),
        format!("--user-data-dir={}", driver._profile.path().display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": args}),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = Instant::now() + PAGE_WITHIN;
    let client = loop {
        match ClientBuilder::rustls()
            .expect("a rustls WebDriver client")
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no WebDriver session on {url}: {e}"),
        }
    };
    (driver, client)
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("creating the screenshot directory");
    dir
}

async fn screenshot(client: &Client, name: &str) -> Vec<u8> {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), &png).expect("saving a screenshot");
    png
}

/// Runs `script` in the page until it returns `want` (or the deadline passes) and returns its
/// last answer.
async fn until(client: &Client, script: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        let got = client.execute(script, vec![]).await.unwrap_or(Value::Null);
        if want(&got) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every state drawn in the graph: name → "status" (with "+rerun" when a redrive ran it).
const GRAPH_STATES: &str = r#"
  const out = {};
  for (const n of document.querySelectorAll('#graph g.state')) {
    out[n.dataset.state] = n.dataset.status + (n.dataset.rerun === 'true' ? '+rerun' : '');
  }
  return out;
"#;

fn states(value: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

fn expect_states(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn text(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        if let Ok(e) = client.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                return t;
            }
        }
        if Instant::now() > deadline {
            panic!("no element {css} on the page");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Pass whose Parameters read `$$.Execution.RedriveTime`, which exists only after a redrive:
/// it fails with `States.Runtime` on the first run and succeeds once redriven.
fn fails_until_redriven() -> Value {
    json!({
        "Type": "Pass",
        "Parameters": {"count.$": "$$.Execution.RedriveCount", "time.$": "$$.Execution.RedriveTime"},
        "Next": "B2"
    })
}

fn parallel_machine() -> Value {
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Fork"},
            "Fork": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A1", "States": {
                        "A1": {"Type": "Pass", "Next": "A2"},
                        "A2": {"Type": "Pass", "End": true}
                    }},
                    {"StartAt": "B1", "States": {
                        "B1": fails_until_redriven(),
                        "B2": {"Type": "Pass", "End": true}
                    }}
                ],
                "Next": "Done"
            },
            "Done": {"Type": "Succeed"}
        }
    })
}

/// An inline Map whose item `{"bad": true}` ends in a Fail state.
fn inline_map_machine() -> Value {
    json!({
        "StartAt": "Loop",
        "States": {"Loop": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 1,
            "ItemProcessor": {
                "StartAt": "X",
                "States": {
                    "X": {"Type": "Pass", "Next": "Y"},
                    "Y": {"Type": "Choice", "Default": "Ok", "Choices": [
                        {"Variable": "$.bad", "BooleanEquals": true, "Next": "Boom"}]},
                    "Boom": {"Type": "Fail", "Error": "Bad.Item", "Cause": "a bad item"},
                    "Ok": {"Type": "Succeed"}
                }
            },
            "End": true
        }}
    })
}

fn distributed_machine() -> Value {
    json!({
        "StartAt": "Fan",
        "States": {"Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Each",
                "States": {"Each": {"Type": "Pass", "End": true}}
            },
            "End": true
        }}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_a_failed_parallel_branch_redrives_it_and_lists_machines_and_map_runs() {
    let server = Server::start(Options {
        store: StoreKind::Sqlite,
        ..Options::default()
    });
    let sfn = server.client();
    let sm = create_machine(&sfn, "console-fork", &parallel_machine()).await;
    let exec = start(&sfn, &sm, Some("first"), &json!({"order": 42})).await;
    let described = wait_done(&sfn, &exec, DONE_WITHIN).await;
    assert_eq!(described.status().as_str(), "FAILED", "{}", server.logs());
    let dm = create_machine(&sfn, "console-fan", &distributed_machine()).await;
    let items = json!({"items": [{"n": 1}, {"n": 2}, {"n": 3}]});
    let dm_exec = start(&sfn, &dm, Some("fan"), &items).await;
    assert_eq!(
        wait_done(&sfn, &dm_exec, DONE_WITHIN)
            .await
            .status()
            .as_str(),
        "SUCCEEDED"
    );
    let runs = sfn
        .list_map_runs()
        .execution_arn(&dm_exec)
        .send()
        .await
        .expect("ListMapRuns");
    let map_run = runs.map_runs()[0].map_run_arn().to_owned();

    let looped = create_machine(&sfn, "console-loop", &inline_map_machine()).await;
    let items = json!({"items": [{"bad": false}, {"bad": true}, {"bad": false}]});
    let loop_exec = start(&sfn, &looped, Some("loop"), &items).await;
    assert_eq!(
        wait_done(&sfn, &loop_exec, DONE_WITHIN)
            .await
            .status()
            .as_str(),
        "FAILED"
    );

    let (_driver, client) = browser().await;
    let base = server.endpoint();

    // The execution: the failed branch's state and the Parallel are drawn failed, the rest of
    // what ran succeeded, what never ran is not reached.
    client
        .goto(&format!("{base}/#/exec/{exec}"))
        .await
        .expect("opening the execution page");
    let failed = expect_states(&[
        ("Prepare", "succeeded"),
        ("Fork", "failed"),
        ("A1", "succeeded"),
        ("A2", "succeeded"),
        ("B1", "failed"),
        ("B2", "notreached"),
        ("Done", "notreached"),
    ]);
    let got = until(&client, GRAPH_STATES, |v| states(v) == failed).await;
    assert_eq!(states(&got), failed, "the graph of the failed execution");
    assert_eq!(text(&client, "#exec-status").await, "FAILED");
    let banner = text(&client, "#error-banner").await;
    assert!(banner.contains("States.Runtime"), "{banner}");

    // The banner leads to the failing state, whose details show its error and input.
    client
        .find(Locator::Css("#goto-failed"))
        .await
        .expect("the banner's link to the failing state")
        .click()
        .await
        .expect("clicking it");
    let error = text(&client, "#state-error").await;
    assert!(error.starts_with("States.Runtime"), "{error}");
    assert!(error.contains("B1"), "the error names the state: {error}");
    let input: Value = serde_json::from_str(&text(&client, "#state-input").await)
        .expect("the state's input is JSON");
    assert_eq!(input, json!({"order": 42}));
    // Its redrive-from-state path names the Parallel's branch.
    assert_eq!(text(&client, "#rfs-path").await, "Fork/1/B1");
    screenshot(&client, "execution-failed").await;

    // Redrive: the execution succeeds, and only the failed branch ran again.
    client
        .find(Locator::Css("#redrive"))
        .await
        .expect("the Redrive button")
        .click()
        .await
        .expect("pressing Redrive");
    // The Parallel is entered again; its branch that succeeded is not.
    let redriven = expect_states(&[
        ("Prepare", "succeeded"),
        ("Fork", "succeeded+rerun"),
        ("A1", "succeeded"),
        ("A2", "succeeded"),
        ("B1", "succeeded+rerun"),
        ("B2", "succeeded+rerun"),
        ("Done", "succeeded+rerun"),
    ]);
    let got = until(&client, GRAPH_STATES, |v| states(v) == redriven).await;
    assert_eq!(states(&got), redriven, "the graph after the redrive");
    let status = "return document.getElementById('exec-status')?.textContent;";
    let got = until(&client, status, |v| v == "SUCCEEDED").await;
    assert_eq!(got, "SUCCEEDED", "the status after the redrive");
    assert_eq!(text(&client, "#redrive-count").await, "1");
    let after = wait_done(&sfn, &exec, DONE_WITHIN).await;
    assert_eq!(after.status().as_str(), "SUCCEEDED");
    assert_eq!(after.redrive_count(), Some(1));
    // The paged event table, filtered to failures: those of the first run.
    let failures = r#"
      const s = document.getElementById('event-filter');
      s.value = 'failed'; s.dispatchEvent(new Event('change'));
      return [...document.querySelectorAll('#event-table tbody tr')].map(r => r.dataset.type);
    "#;
    let want = json!(["ParallelStateFailed", "ExecutionFailed"]);
    let got = until(&client, failures, |v| v == &want).await;
    assert_eq!(got, want, "failed events of the first page");
    let png = screenshot(&client, "execution-redriven").await;
    if std::env::var_os("STEPWISE_UPDATE_CONSOLE_PNG").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
        std::fs::write(docs, png).expect("writing docs/console.png");
    }
    // The redriven Parallel's result joins the branch the redrive kept (from the first run)
    // with the one it ran again.
    let fork = read_steps(&client, "Fork").await;
    assert_eq!(fork["matches"], json!("true"), "{fork}");
    assert_eq!(fork["steps"]["result"][0], json!({"order": 42}), "{fork}");
    assert_eq!(fork["steps"]["result"][1]["count"], json!(1), "{fork}");

    // An inline Map: the iteration picker opens on the failed iteration, and another
    // iteration can be picked.
    client
        .goto(&format!("{base}/#/exec/{loop_exec}"))
        .await
        .expect("opening the Map execution");
    let picker = r#"
      const p = document.querySelector('.iteration-picker[data-map=Loop]');
      return p && {value: p.value, options: [...p.options].map(o => o.textContent)};
    "#;
    // MaxConcurrency 1: item 2 never started.
    let want = json!({"value": "1", "options": ["#0 Succeeded", "#1 Failed"]});
    let got = until(&client, picker, |v| v == &want).await;
    assert_eq!(got, want, "the iteration picker");
    let failed_iteration = expect_states(&[
        ("Loop", "failed"),
        ("X", "succeeded"),
        ("Y", "succeeded"),
        ("Boom", "failed"),
        ("Ok", "notreached"),
    ]);
    let got = until(&client, GRAPH_STATES, |v| states(v) == failed_iteration).await;
    assert_eq!(states(&got), failed_iteration, "iteration #1");
    let banner = text(&client, "#error-banner").await;
    assert!(banner.contains("Bad.Item"), "{banner}");
    // The failing state's redrive-from-state path names the Map's iteration.
    client
        .find(Locator::Css("#goto-failed"))
        .await
        .expect("the banner's link to the failing state")
        .click()
        .await
        .expect("clicking it");
    assert_eq!(text(&client, "#rfs-path").await, "Loop/1/Boom");
    screenshot(&client, "map-iteration-failed").await;
    let pick = r#"
      const p = document.querySelector('.iteration-picker[data-map=Loop]');
      p.value = '0'; p.dispatchEvent(new Event('change'));
    "#;
    client
        .execute(pick, vec![])
        .await
        .expect("picking iteration #0");
    let first = expect_states(&[
        ("Loop", "failed"),
        ("X", "succeeded"),
        ("Y", "succeeded"),
        ("Boom", "notreached"),
        ("Ok", "succeeded"),
    ]);
    let got = until(&client, GRAPH_STATES, |v| states(v) == first).await;
    assert_eq!(states(&got), first, "iteration #0");

    // Bulk redrive on the Map's state machine, FAILED executions: the dry run lists the failed
    // execution and what would run again, and redrives nothing; the confirmed batch does.
    client
        .goto(&format!("{base}/#/sm/{looped}"))
        .await
        .expect("the Map's state machine");
    let bulk = r#"
      const s = document.getElementById('status-filter');
      if (!s) return null;
      s.value = 'FAILED'; s.dispatchEvent(new Event('change'));
      document.getElementById('bulk-redrive').click();
      return true;
    "#;
    until(&client, bulk, |v| v == &json!(true)).await;
    let dry_run = r#"
      const rows = document.querySelectorAll('#bulk-dry-run tbody tr');
      if (!rows.length) return null;
      return {summary: document.getElementById('bulk-summary').textContent,
              rows: [...rows].map(r => [r.dataset.arn, r.dataset.redrivable, r.querySelector('.reruns').textContent])};
    "#;
    let got = until(&client, dry_run, |v| !v.is_null()).await;
    let want = json!({"summary": "Dry run: 1 selected, 1 redrivable.", "rows": [[loop_exec, "true", "Loop/1/Boom, Loop/2"]]});
    assert_eq!(got, want, "the bulk redrive's dry run");
    let untouched = sfn
        .describe_execution()
        .execution_arn(&loop_exec)
        .send()
        .await
        .expect("DescribeExecution");
    assert_eq!(
        untouched.redrive_count(),
        Some(0),
        "a dry run redrives nothing"
    );
    screenshot(&client, "bulk-dry-run").await;
    client
        .find(Locator::Css("#bulk-confirm"))
        .await
        .expect("the confirm button")
        .click()
        .await
        .expect("confirming the bulk redrive");
    let outcome = r#"
      const o = document.getElementById('bulk-outcome');
      return o ? [o.dataset.status, o.textContent.replace(/^Batch \S+: /, '')] : null;
    "#;
    let got = until(&client, outcome, |v| !v.is_null()).await;
    assert_eq!(got, json!(["COMPLETED", "1 of 1 redriven, 0 refused."]));
    let redriven = sfn
        .describe_execution()
        .execution_arn(&loop_exec)
        .send()
        .await
        .expect("DescribeExecution");
    assert_eq!(
        redriven.redrive_count(),
        Some(1),
        "the bulk redrive reached the API"
    );

    // The state machine list, and a state machine with its graph and executions.
    client.goto(&format!("{base}/#/")).await.expect("the list");
    let listed = r#"return [...document.querySelectorAll('#machines tbody tr')].map(r => r.dataset.arn).sort();"#;
    let mut want = vec![sm.clone(), dm.clone(), looped.clone()];
    want.sort();
    let got = until(&client, listed, |v| v == &json!(want)).await;
    assert_eq!(got, json!(want), "the state machine list");
    screenshot(&client, "state-machines").await;
    client
        .find(Locator::LinkText("console-fork"))
        .await
        .expect("a link to the state machine")
        .click()
        .await
        .expect("opening it");
    let executions = r#"return [...document.querySelectorAll('#executions tbody tr')].map(r => [r.dataset.arn, r.dataset.status]);"#;
    let want = json!([[exec, "SUCCEEDED"]]);
    let got = until(&client, executions, |v| v == &want).await;
    assert_eq!(got, want, "the state machine's executions");
    let drawn = until(&client, GRAPH_STATES, |v| states(v).len() == 7).await;
    assert!(
        states(&drawn).values().all(|s| s == "notreached"),
        "a definition graph has no outcomes: {drawn}"
    );
    screenshot(&client, "state-machine").await;

    // The Map Run: its counts and its three child executions.
    client
        .goto(&format!("{base}/#/maprun/{map_run}"))
        .await
        .expect("the Map Run page");
    let counts = r#"
      const read = id => Object.fromEntries([...document.querySelectorAll(`#${id} tr`)]
        .map(r => [r.dataset.count, r.querySelector('td').textContent]));
      return {items: read('item-counts'), executions: read('execution-counts'),
              children: document.querySelectorAll('#children tbody tr[data-status=SUCCEEDED]').length};
    "#;
    let got = until(&client, counts, |v| v["children"] == json!(3)).await;
    assert_eq!(got["items"]["total"], json!("3"), "{got}");
    assert_eq!(got["items"]["succeeded"], json!("3"), "{got}");
    assert_eq!(got["executions"]["succeeded"], json!("3"), "{got}");
    assert_eq!(got["children"], json!(3), "{got}");
    assert_eq!(text(&client, "#maprun-status").await, "SUCCEEDED");
    screenshot(&client, "map-run").await;

    client.close().await.expect("closing the browser");
}

/// Two Passes, then a Choice that fails the execution in its late state `Reject` unless the
/// input says `ok`.
fn late_failure_machine() -> Value {
    json!({
        "StartAt": "Load",
        "States": {
            "Load": {"Type": "Pass", "Next": "Shape"},
            "Shape": {"Type": "Pass", "Next": "Check"},
            "Check": {"Type": "Choice", "Default": "Reject", "Choices": [
                {"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}]},
            "Done": {"Type": "Succeed"},
            "Reject": {"Type": "Fail", "Error": "Order.Rejected", "Cause": "not ok"}
        }
    })
}

/// Selects a state in the graph, then presses "Redrive from this state" with `input` (empty:
/// the input it had) onto `definition` (empty: the one it ran; `CURRENT`) and returns the state
/// path it redrives from.
const REDRIVE_FROM: &str = r#"
  const [name, input, definition] = arguments;
  const node = document.querySelector(`#graph g.state[data-state="${name}"]`);
  if (!node) return null;
  if (document.querySelector('#details h2')?.firstChild?.textContent?.trim() !== name) {
    node.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    return null;
  }
  const button = document.getElementById('redrive-from-state');
  if (!button) return null;
  document.getElementById('rfs-input').value = input;
  document.getElementById('rfs-definition').value = definition;
  button.click();
  return document.getElementById('rfs-path').textContent;
"#;

/// Runs `REDRIVE_FROM` until it pressed the button; returns the state path (null: it never did).
async fn redrive_from(client: &Client, state: &str, input: &str, definition: &str) -> Value {
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        let got = client
            .execute(
                REDRIVE_FROM,
                vec![json!(state), json!(input), json!(definition)],
            )
            .await
            .unwrap_or(Value::Null);
        if !got.is_null() || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_redrives_an_execution_from_a_chosen_state_with_a_new_input() {
    let server = Server::start(Options {
        store: StoreKind::Sqlite,
        ..Options::default()
    });
    let sfn = server.client();
    let sm = create_machine(&sfn, "console-from", &late_failure_machine()).await;
    let exec = start(&sfn, &sm, Some("late"), &json!({"ok": false})).await;
    let described = wait_done(&sfn, &exec, DONE_WITHIN).await;
    assert_eq!(described.status().as_str(), "FAILED", "{}", server.logs());

    let (_driver, client) = browser().await;
    client
        .goto(&format!("{}/#/exec/{exec}", server.endpoint()))
        .await
        .expect("the execution page");
    let failed = expect_states(&[
        ("Load", "succeeded"),
        ("Shape", "succeeded"),
        ("Check", "succeeded"),
        ("Done", "notreached"),
        ("Reject", "failed"),
    ]);
    let got = until(&client, GRAPH_STATES, |v| states(v) == failed).await;
    assert_eq!(states(&got), failed, "the graph of the failed execution");

    // A state that never ran has no input to re-run with: the server's refusal is shown.
    let path = redrive_from(&client, "Done", "", "").await;
    assert_eq!(path, json!("Done"));
    let refusal = text(&client, "#rfs-msg [role=alert]").await;
    assert!(
        refusal.starts_with("ValidationException") && refusal.contains("was never entered"),
        "{refusal}"
    );
    assert_eq!(text(&client, "#exec-status").await, "FAILED");

    // From Shape with a corrected input: Shape and what follows run again, Load does not.
    let path = redrive_from(&client, "Shape", r#"{"ok": true}"#, "").await;
    assert_eq!(path, json!("Shape"));
    let redriven = expect_states(&[
        ("Load", "succeeded"),
        ("Shape", "succeeded+rerun"),
        ("Check", "succeeded+rerun"),
        ("Done", "succeeded+rerun"),
        ("Reject", "failed"),
    ]);
    let got = until(&client, GRAPH_STATES, |v| states(v) == redriven).await;
    assert_eq!(
        states(&got),
        redriven,
        "the graph after the redrive from Shape"
    );
    let status = "return document.getElementById('exec-status')?.textContent;";
    let got = until(&client, status, |v| v == "SUCCEEDED").await;
    assert_eq!(got, "SUCCEEDED", "the status after the redrive");
    assert_eq!(text(&client, "#redrive-count").await, "1");
    // The page shows the redrive's state and both inputs (Stepwise.DescribeExecutionRedrives).
    let changed = r#"
      const c = document.getElementById('changed-redrive');
      return c && {title: c.querySelector('h2').textContent,
                   previous: JSON.parse(document.getElementById('changed-previous-input').textContent),
                   input: JSON.parse(document.getElementById('changed-input').textContent)};
    "#;
    let want =
        json!({"title": "Redrive 1 from Shape", "previous": {"ok": false}, "input": {"ok": true}});
    let got = until(&client, changed, |v| v == &want).await;
    assert_eq!(got, want, "the redrive's inputs");
    screenshot(&client, "redrive-from-state").await;
    let after = wait_done(&sfn, &exec, DONE_WITHIN).await;
    assert_eq!(after.status().as_str(), "SUCCEEDED");
    assert_eq!(after.redrive_count(), Some(1));
    let output: Value = serde_json::from_str(after.output().unwrap_or("null")).expect("JSON");
    assert_eq!(output, json!({"ok": true}), "Shape got the new input");

    // Onto the state machine's current definition, fixed to review what is not ok: from Check
    // with the input it had, and the page draws the definition the execution now runs.
    let second = start(&sfn, &sm, Some("late-2"), &json!({"ok": false})).await;
    let described = wait_done(&sfn, &second, DONE_WITHIN).await;
    assert_eq!(described.status().as_str(), "FAILED", "{}", server.logs());
    let mut fixed = late_failure_machine();
    fixed["States"]["Check"]["Default"] = json!("Review");
    if let Some(states) = fixed["States"].as_object_mut() {
        states.remove("Reject");
    }
    fixed["States"]["Review"] =
        json!({"Type": "Pass", "Result": "reviewed", "ResultPath": "$.review", "Next": "Done"});
    sfn.update_state_machine()
        .state_machine_arn(&sm)
        .definition(fixed.to_string())
        .send()
        .await
        .expect("UpdateStateMachine");
    client
        .goto(&format!("{}/#/exec/{second}", server.endpoint()))
        .await
        .expect("the second execution's page");
    let got = until(&client, GRAPH_STATES, |v| states(v) == failed).await;
    assert_eq!(
        states(&got),
        failed,
        "the graph of the second failed execution"
    );
    let path = redrive_from(&client, "Check", "", "CURRENT").await;
    assert_eq!(path, json!("Check"));
    let fixed_run = expect_states(&[
        ("Load", "succeeded"),
        ("Shape", "succeeded"),
        ("Check", "succeeded+rerun"),
        ("Review", "succeeded+rerun"),
        ("Done", "succeeded+rerun"),
    ]);
    let got = until(&client, GRAPH_STATES, |v| states(v) == fixed_run).await;
    assert_eq!(
        states(&got),
        fixed_run,
        "the graph on the current definition"
    );
    let after = wait_done(&sfn, &second, DONE_WITHIN).await;
    assert_eq!(after.status().as_str(), "SUCCEEDED", "{}", server.logs());
    let output: Value = serde_json::from_str(after.output().unwrap_or("null")).expect("JSON");
    assert_eq!(output, json!({"ok": false, "review": "reviewed"}));

    // Into a lane: iteration 1 of an inline Map, from its state Y with a corrected item; the
    // iteration that never started runs too.
    let looped = create_machine(&sfn, "console-from-loop", &inline_map_machine()).await;
    let items = json!({"items": [{"bad": false}, {"bad": true}, {"bad": false}]});
    let third = start(&sfn, &looped, Some("loop"), &items).await;
    let described = wait_done(&sfn, &third, DONE_WITHIN).await;
    assert_eq!(described.status().as_str(), "FAILED", "{}", server.logs());
    client
        .goto(&format!("{}/#/exec/{third}", server.endpoint()))
        .await
        .expect("the Map execution's page");
    let lane =
        "return document.querySelector('#graph g.state[data-state=Y]')?.dataset.lane ?? null;";
    let got = until(&client, lane, |v| v == "Loop[1]/").await;
    assert_eq!(
        got,
        json!("Loop[1]/"),
        "the picker opens on the failed iteration"
    );
    let path = redrive_from(&client, "Y", r#"{"bad": false, "fixed": true}"#, "").await;
    assert_eq!(path, json!("Loop/1/Y"));
    let status = "return document.getElementById('exec-status')?.textContent;";
    let got = until(&client, status, |v| v == "SUCCEEDED").await;
    assert_eq!(got, "SUCCEEDED", "the Map execution after the redrive");
    let after = wait_done(&sfn, &third, DONE_WITHIN).await;
    let output: Value = serde_json::from_str(after.output().unwrap_or("null")).expect("JSON");
    assert_eq!(
        output,
        json!([{"bad": false}, {"bad": false, "fixed": true}, {"bad": false}])
    );
    client.close().await.expect("closing the browser");
}

/// A Pass and an activity Task that use every step of input and output processing; the
/// activity fails once with `Flaky` and is retried.
fn steps_machine(activity: &str) -> Value {
    json!({
        "StartAt": "Shape",
        "States": {
            "Shape": {
                "Type": "Pass",
                "InputPath": "$.order",
                "Parameters": {"id.$": "$.id", "qty.$": "$.qty"},
                "ResultPath": "$.shaped",
                "OutputPath": "$.shaped",
                "Next": "Work"
            },
            "Work": {
                "Type": "Task",
                "Resource": activity,
                "InputPath": "$",
                "Parameters": {"ask.$": "$.id"},
                "ResultSelector": {"value.$": "$.value"},
                "ResultPath": "$.result",
                "OutputPath": "$.result",
                "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                "End": true
            }
        }
    })
}

/// Selects a state in the graph and returns its steps (step → JSON), whether the replayed
/// output matched the recorded one, the steps shown as recorded rather than replayed, and its
/// attempts' outcomes.
const SELECT_AND_READ_STEPS: &str = r#"
  const [name] = arguments;
  const node = document.querySelector(`#graph g.state[data-state="${name}"]`);
  if (!node) return null;
  if (document.querySelector('#details h2')?.firstChild?.textContent?.trim() !== name) {
    node.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    return null;
  }
  const steps = document.querySelectorAll('#steps tr[data-step]');
  if (!steps.length) return null;
  return {
    steps: Object.fromEntries([...steps].map(r => [r.dataset.step, JSON.parse(r.querySelector('pre').textContent)])),
    matches: document.getElementById('steps-check')?.dataset.matches ?? null,
    recorded: [...steps].filter(r => r.dataset.from === 'history').map(r => r.dataset.step),
    attempts: [...document.querySelectorAll('#state-attempts tbody tr')].map(r => [r.dataset.outcome, r.children[2].textContent]),
  };
"#;

async fn read_steps(client: &Client, state: &str) -> Value {
    let deadline = Instant::now() + PAGE_WITHIN;
    loop {
        let got = client
            .execute(SELECT_AND_READ_STEPS, vec![json!(state)])
            .await
            .unwrap_or(Value::Null);
        if !got.is_null() {
            return got;
        }
        if Instant::now() > deadline {
            let shown = client
                .execute(
                    "return document.getElementById('details')?.innerText;",
                    vec![],
                )
                .await;
            panic!("no steps shown for {state}: {shown:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_a_states_steps_and_retries_and_an_activitys_pending_tasks() {
    let server = Server::start(Options {
        store: StoreKind::Sqlite,
        ..Options::default()
    });
    let sfn = server.client();
    let activity = common::create_activity(&sfn, "console-steps").await;
    let idle = common::create_activity(&sfn, "console-idle").await;
    let sm = create_machine(&sfn, "console-steps", &steps_machine(&activity)).await;
    let input = json!({"order": {"id": 7, "qty": 2, "note": "x"}});
    let exec = start(&sfn, &sm, Some("steps"), &input).await;

    // The activities page: the scheduled task waits for a worker.
    let (_driver, client) = browser().await;
    let base = server.endpoint();
    client
        .goto(&format!("{base}/#/activities"))
        .await
        .expect("the activities page");
    let pending = r#"
      return Object.fromEntries([...document.querySelectorAll('section.activity')].map(s =>
        [s.dataset.arn, [...s.querySelectorAll('tr[data-execution]')].map(r => r.dataset.execution)]));
    "#;
    let want = json!({ activity.clone(): [exec.clone()], idle.clone(): [] });
    let got = until(&client, pending, |v| v == &want).await;
    assert_eq!(got, want, "pending tasks per activity");
    screenshot(&client, "activities").await;

    // A worker fails the first attempt and completes the retry.
    let task = |n: u32| {
        let sfn = sfn.clone();
        let activity = activity.clone();
        async move {
            let deadline = Instant::now() + DONE_WITHIN;
            loop {
                let t = sfn
                    .get_activity_task()
                    .activity_arn(&activity)
                    .send()
                    .await
                    .expect("GetActivityTask");
                if let Some(token) = t.task_token().filter(|t| !t.is_empty()) {
                    let input: Value = serde_json::from_str(t.input().unwrap_or("null"))
                        .expect("the task's input is JSON");
                    assert_eq!(input, json!({"ask": 7}), "attempt {n}");
                    return token.to_owned();
                }
                assert!(Instant::now() < deadline, "no task for attempt {n}");
            }
        }
    };
    let first = task(1).await;
    sfn.send_task_failure()
        .task_token(first)
        .error("Flaky")
        .cause("try again")
        .send()
        .await
        .expect("SendTaskFailure");
    let second = task(2).await;
    sfn.send_task_success()
        .task_token(second)
        .output(json!({"value": 14, "noise": true}).to_string())
        .send()
        .await
        .expect("SendTaskSuccess");
    assert_eq!(
        wait_done(&sfn, &exec, DONE_WITHIN).await.status().as_str(),
        "SUCCEEDED",
        "{}",
        server.logs()
    );
    let want = json!({ activity.clone(): [], idle.clone(): [] });
    let got = until(&client, pending, |v| v == &want).await;
    assert_eq!(got, want, "no task is pending once the worker took them");

    // The execution page: each state's input and output at each step, replayed by TestState
    // on the recorded input and result, and matching the recorded output.
    client
        .goto(&format!("{base}/#/exec/{exec}"))
        .await
        .expect("the execution page");
    let work = read_steps(&client, "Work").await;
    let got_steps = work["steps"].clone();
    let want_steps = json!({
        "input": {"id": 7, "qty": 2},
        "afterInputPath": {"id": 7, "qty": 2},
        "afterParameters": {"ask": 7},
        "result": {"value": 14, "noise": true},
        "afterResultSelector": {"value": 14},
        "afterResultPath": {"id": 7, "qty": 2, "result": {"value": 14}},
        "output": {"value": 14},
    });
    assert_eq!(got_steps, want_steps, "the Task's steps");
    assert_eq!(work["matches"], json!("true"), "{work}");
    assert_eq!(
        work["recorded"],
        json!([]),
        "a Task's steps are all replayed"
    );
    assert_eq!(
        work["attempts"],
        json!([["ActivityFailed", "Flaky"], ["ActivitySucceeded", ""]]),
        "the Task's attempts"
    );
    screenshot(&client, "state-steps").await;
    let shape = read_steps(&client, "Shape").await;
    let want_steps = json!({
        "input": {"order": {"id": 7, "qty": 2, "note": "x"}},
        "afterInputPath": {"id": 7, "qty": 2, "note": "x"},
        "afterParameters": {"id": 7, "qty": 2},
        // A Pass has no ResultSelector: its result passes through unchanged.
        "afterResultSelector": {"id": 7, "qty": 2},
        // ResultPath places the result in the state's input, not in what InputPath chose.
        "afterResultPath": {"order": {"id": 7, "qty": 2, "note": "x"}, "shaped": {"id": 7, "qty": 2}},
        "output": {"id": 7, "qty": 2},
    });
    assert_eq!(shape["steps"], want_steps, "the Pass's steps");
    assert_eq!(shape["matches"], json!("true"), "{shape}");
    assert_eq!(shape["attempts"], json!([]), "a Pass has no attempts");

    client.close().await.expect("closing the browser");
}

/// A Parallel and an inline Map that use each step their results go through: Parameters into
/// the branches, ItemsPath and ItemSelector into the iterations, ResultSelector, ResultPath and
/// OutputPath on the way out.
fn containers_machine() -> Value {
    json!({
        "StartAt": "Fork",
        "States": {
            "Fork": {
                "Type": "Parallel",
                "Parameters": {"id.$": "$.order.id", "qty.$": "$.order.qty"},
                "Branches": [
                    {"StartAt": "Double", "States": {
                        "Double": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.qty, $.qty)"}, "End": true}
                    }},
                    {"StartAt": "Label", "States": {
                        "Label": {"Type": "Pass", "Next": "Tag"},
                        "Tag": {"Type": "Pass", "Parameters": {"tag.$": "States.Format('order-{}', $.id)"}, "End": true}
                    }}
                ],
                "ResultSelector": {"double.$": "$[0].n", "tag.$": "$[1].tag"},
                "ResultPath": "$.fork",
                "Next": "Each"
            },
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "tag.$": "$.fork.tag"},
                "ItemProcessor": {"StartAt": "Name", "States": {
                    "Name": {"Type": "Pass", "Parameters": {"at.$": "$.index", "label.$": "States.Format('{}-{}', $.tag, $.value)"}, "End": true}
                }},
                "ResultSelector": {"labels.$": "$[*].label", "count.$": "States.ArrayLength($)"},
                "ResultPath": "$.each",
                "OutputPath": "$.each",
                "End": true
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_replays_a_parallels_and_a_maps_steps_from_their_lanes() {
    let server = Server::start(Options {
        store: StoreKind::Sqlite,
        ..Options::default()
    });
    let (_driver, client) = browser().await;
    let input = json!({"order": {"id": 7, "qty": 3}, "items": ["a", "b", "c"]});
    let open = |name: &'static str, machine: Value, input: Value| {
        let (server, client) = (&server, &client);
        async move {
            let sfn = server.client();
            let sm = create_machine(&sfn, name, &machine).await;
            let exec = start(&sfn, &sm, Some(name), &input).await;
            let done = wait_done(&sfn, &exec, DONE_WITHIN).await;
            assert_eq!(done.status().as_str(), "SUCCEEDED", "{}", server.logs());
            client
                .goto(&format!("{}/#/exec/{exec}", server.endpoint()))
                .await
                .expect("the execution page");
        }
    };
    open("console-containers", containers_machine(), input.clone()).await;
    // The Parallel: its result is its branches' outputs, each its branch's last state's.
    let fork = read_steps(&client, "Fork").await;
    let forked = json!({"order": {"id": 7, "qty": 3}, "items": ["a", "b", "c"], "fork": {"double": 6, "tag": "order-7"}});
    let want_steps = json!({
        "input": input,
        "afterParameters": {"id": 7, "qty": 3},
        "result": [{"n": 6}, {"tag": "order-7"}],
        "afterResultSelector": {"double": 6, "tag": "order-7"},
        "afterResultPath": forked,
        "output": forked,
    });
    assert_eq!(fork["steps"], want_steps, "the Parallel's steps: {fork}");
    assert_eq!(fork["matches"], json!("true"), "{fork}");
    assert_eq!(
        fork["recorded"],
        json!(["afterParameters", "result"]),
        "{fork}"
    );
    screenshot_steps(&client, "parallel-steps").await;
    // The inline Map: its result is its iterations' outputs in index order.
    let each = read_steps(&client, "Each").await;
    let labels = json!({"labels": ["order-7-a", "order-7-b", "order-7-c"], "count": 3});
    let mut combined = forked.clone();
    combined["each"] = labels.clone();
    let want_steps = json!({
        "input": forked,
        "afterInputPath": forked,
        "afterItemsPath": ["a", "b", "c"],
        "afterItemSelector": [
            {"value": "a", "index": 0, "tag": "order-7"},
            {"value": "b", "index": 1, "tag": "order-7"},
            {"value": "c", "index": 2, "tag": "order-7"}
        ],
        "result": [
            {"at": 0, "label": "order-7-a"},
            {"at": 1, "label": "order-7-b"},
            {"at": 2, "label": "order-7-c"}
        ],
        "afterResultSelector": labels,
        "afterResultPath": combined,
        "output": labels,
    });
    assert_eq!(each["steps"], want_steps, "the Map's steps: {each}");
    assert_eq!(each["matches"], json!("true"), "{each}");
    assert_eq!(
        each["recorded"],
        json!(["afterItemSelector", "result"]),
        "{each}"
    );
    screenshot_steps(&client, "map-steps").await;

    // A caught Parallel is replayed with its error, read from where its Catch put it.
    let caught = json!({
        "StartAt": "Guarded",
        "States": {
            "Guarded": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "Boom", "States": {
                    "Boom": {"Type": "Fail", "Error": "Bad.Thing", "Cause": "it broke"}
                }}],
                "Catch": [
                    {"ErrorEquals": ["Other"], "ResultPath": "$.other", "Next": "Handled"},
                    {"ErrorEquals": ["Bad.Thing"], "ResultPath": "$.problem", "Next": "Handled"}
                ],
                "End": true
            },
            "Handled": {"Type": "Pass", "End": true}
        }
    });
    open("console-caught", caught, json!({"id": 1})).await;
    let guarded = read_steps(&client, "Guarded").await;
    let problem = json!({"id": 1, "problem": {"Error": "Bad.Thing", "Cause": "it broke"}});
    assert_eq!(guarded["steps"]["output"], problem, "{guarded}");
    assert_eq!(guarded["matches"], json!("true"), "{guarded}");

    // A Distributed Map's iterations are child executions: the page says so, and replays nothing.
    let fan = json!({"items": [1, 2]});
    open("console-distributed-steps", distributed_machine(), fan).await;
    let unavailable = r#"
      const node = document.querySelector('#graph g.state[data-state="Fan"]');
      if (!node) return null;
      if (document.querySelector('#details h2')?.firstChild?.textContent?.trim() !== 'Fan') {
        node.dispatchEvent(new MouseEvent('click', {bubbles: true}));
        return null;
      }
      return document.getElementById('steps-unavailable')?.textContent ?? null;
    "#;
    let why = until(&client, unavailable, |v| v.is_string()).await;
    assert!(
        why.as_str().is_some_and(|w| w.contains("Distributed Map")),
        "{why}"
    );
    client.close().await.expect("closing the browser");
}

/// A screenshot of the execution page scrolled to the selected state's steps.
async fn screenshot_steps(client: &Client, name: &str) {
    client
        .execute("document.getElementById('steps').scrollIntoView();", vec![])
        .await
        .expect("scrolling to the steps");
    screenshot(client, name).await;
}

/// The events of the selected Map iteration's `Work` state, with its input and output, once
/// iteration `index` is picked and `Work` selected.
const ITERATION_WORK: &str = r#"
  const [index] = arguments;
  const picker = document.querySelector('.iteration-picker[data-map=Fan]');
  if (!picker) return null;
  if (picker.value !== String(index)) {
    picker.value = String(index); picker.dispatchEvent(new Event('change'));
    return null;
  }
  const node = document.querySelector('#graph g.state[data-state=Work]');
  const lane = `Fan[${index}]/`;
  if (node.dataset.lane !== lane) return null;
  const shown = document.querySelector('#details p.muted')?.textContent ?? '';
  if (!shown.includes(lane)) {
    node.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    return null;
  }
  return {
    input: JSON.parse(document.getElementById('state-input').textContent),
    output: JSON.parse(document.getElementById('state-output').textContent),
    events: [...document.querySelectorAll('#state-events tr')].map(r => r.dataset.type),
  };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_attributes_concurrent_map_iterations_task_events_to_their_iteration() {
    let server = Server::start(Options {
        store: StoreKind::Sqlite,
        ..Options::default()
    });
    let sfn = server.client();
    let activity = common::create_activity(&sfn, "console-fan").await;
    let machine = json!({
        "StartAt": "Fan",
        "States": {"Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "Work", "States": {
                "Work": {"Type": "Task", "Resource": activity, "End": true}
            }},
            "End": true
        }}
    });
    let sm = create_machine(&sfn, "console-fan-tasks", &machine).await;
    let items: Vec<Value> = (0..3).map(|n| json!({"n": n})).collect();
    let exec = start(&sfn, &sm, Some("fan"), &json!({ "items": items })).await;
    // All three iterations wait on their task at once; the worker ends them in the order it
    // took them, so the first end does not follow the latest `ActivityStarted`'s task.
    let mut tokens = Vec::new();
    let deadline = Instant::now() + DONE_WITHIN;
    while tokens.len() < 3 {
        assert!(Instant::now() < deadline, "three tasks were not scheduled");
        let t = sfn
            .get_activity_task()
            .activity_arn(&activity)
            .send()
            .await
            .expect("GetActivityTask");
        if let Some(token) = t.task_token().filter(|t| !t.is_empty()) {
            let input: Value = serde_json::from_str(t.input().unwrap_or("null")).expect("JSON");
            let n = input["n"].as_i64().expect("the item's n");
            tokens.push((n, token.to_owned()));
        }
    }
    for (n, token) in &tokens {
        sfn.send_task_success()
            .task_token(token)
            .output(json!({"done": n * 10}).to_string())
            .send()
            .await
            .expect("SendTaskSuccess");
    }
    let done = wait_done(&sfn, &exec, DONE_WITHIN).await;
    assert_eq!(done.status().as_str(), "SUCCEEDED", "{}", server.logs());
    let output: Value = serde_json::from_str(done.output().unwrap_or("null")).expect("JSON");
    assert_eq!(output, json!([{"done": 0}, {"done": 10}, {"done": 20}]));

    let (_driver, client) = browser().await;
    client
        .goto(&format!("{}/#/exec/{exec}", server.endpoint()))
        .await
        .expect("the execution page");
    let want_events = json!([
        "TaskStateEntered",
        "ActivityScheduled",
        "ActivityStarted",
        "ActivitySucceeded",
        "TaskStateExited"
    ]);
    for n in 0..3 {
        let deadline = Instant::now() + PAGE_WITHIN;
        let got = loop {
            let got = client
                .execute(ITERATION_WORK, vec![json!(n)])
                .await
                .unwrap_or(Value::Null);
            if !got.is_null() || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(got["input"], json!({"n": n}), "iteration {n}: {got}");
        assert_eq!(
            got["output"],
            json!({"done": n * 10}),
            "iteration {n}: {got}"
        );
        assert_eq!(got["events"], want_events, "iteration {n}: {got}");
    }
    screenshot(&client, "map-concurrent-tasks").await;
    client.close().await.expect("closing the browser");
}

/// `--console off` (no browser needed): `GET /` and the console's files answer the AWS-shaped
/// 404 of any unknown path, while the API, `/health` and `/metrics` stay; the default serves
/// them.
#[tokio::test]
async fn console_off_answers_the_aws_404() {
    let status = |server: &Server, path: &str| {
        let url = format!("{}{path}", server.endpoint());
        async move { reqwest::get(url).await.expect("GET").status().as_u16() }
    };
    let on = Server::start(Options::default());
    assert_eq!(status(&on, "/").await, 200);
    assert_eq!(status(&on, "/console/app.js").await, 200);

    let off = Server::start_with_args(Options::default(), &["--console", "off"]);
    for path in ["/", "/console/app.js", "/console/vendor/dagre.esm.js"] {
        let page = reqwest::get(format!("{}{path}", off.endpoint()))
            .await
            .expect(path);
        assert_eq!(page.status().as_u16(), 404, "{path}");
        let body: Value = serde_json::from_str(&page.text().await.unwrap_or_default())
            .unwrap_or_else(|e| panic!("{path}: not an AWS error body: {e}"));
        assert_eq!(
            body["__type"], "com.amazon.coral.service#UnknownOperationException",
            "{path}"
        );
    }
    assert_eq!(
        (
            status(&off, "/health").await,
            status(&off, "/metrics").await
        ),
        (200, 200)
    );
    let listed = off.client().list_state_machines().send().await;
    assert!(listed.is_ok(), "the API answers: {listed:?}");
}
