//! The S3 side of a Distributed Map against a real S3-compatible server: moto's server,
//! started on a free port for the test and stopped after it. `scripts/setup-test-deps`
//! installs it (`python3 -m pip install 'moto[server]'`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asl::error::ErrorCause;
use engine::item_io::{self, ChildResult, ChildStatus};
use engine::s3::{ListObjects, S3};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const BUCKET: &str = "items";

/// moto's server, killed (by its process id) when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    log: std::path::PathBuf,
}

impl Moto {
    fn start() -> Moto {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "moto's server is not installed (python3 cannot import moto.server): \
             run scripts/setup-test-deps, which installs it with pip install 'moto[server]'"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("stepwise-moto-{port}.log"));
        let out = std::fs::File::create(&log).expect("moto log file");
        let err = out.try_clone().expect("moto log file");
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start python3 -m moto.server");
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Waits until the server answers (its own API at `/moto-api/`).
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto's server exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let probe = client
                .get(format!("{}/moto-api/", self.endpoint))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto's server did not answer within 60 s: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn put(s3: &S3, key: &str, body: &str) {
    s3.put_object(BUCKET, key, body.as_bytes(), "application/octet-stream")
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

async fn get_json(s3: &S3, key: &str) -> Value {
    let body = s3
        .get_object(BUCKET, key, None)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"))
}

/// Exports `results` as a Map Run's `ResultWriter` does: the `ResultWriterDetails`.
async fn export(
    endpoint: &str,
    arguments: Value,
    config: Option<Value>,
    run: &str,
    results: &[ChildResult],
) -> Result<Value, ErrorCause> {
    let s3 = S3::new(endpoint, REGION).expect("client");
    let mut export = item_io::Export::start(s3, &arguments, config.as_ref(), run)?;
    for r in results {
        export.add(r).await?;
    }
    export.finish().await
}

async fn read(
    endpoint: &str,
    action: &str,
    arguments: Value,
    config: Option<Value>,
) -> Result<Vec<Value>, ErrorCause> {
    let s3 = S3::new(endpoint, REGION).expect("client");
    item_io::read_items(
        &s3,
        &format!("arn:aws:states:::s3:{action}"),
        &arguments,
        config.as_ref(),
    )
    .await
}

#[tokio::test]
async fn items_and_results_round_trip_through_s3() {
    let mut moto = Moto::start();
    moto.ready().await;
    let endpoint = moto.endpoint.clone();
    let s3 = S3::new(&endpoint, REGION).expect("client");
    s3.create_bucket(BUCKET).await.expect("create bucket");

    // JSON, JSONL, CSV.
    put(&s3, "in/items.json", r#"[{"id": 1}, {"id": 2}, {"id": 3}]"#).await;
    put(&s3, "in/items.jsonl", "{\"id\": 1}\n{\"id\": 2}\n").await;
    put(&s3, "in/items.csv", "name,qty\nwidget,3\n\"gad,get\",4\n").await;
    put(&s3, "in/items.tsv", "1\t2\n3\t4\n").await;

    let json_items = read(
        &endpoint,
        "getObject",
        json!({"Bucket": BUCKET, "Key": "in/items.json"}),
        Some(json!({"InputType": "JSON", "MaxItems": 2})),
    )
    .await
    .expect("JSON items");
    assert_eq!(json_items, vec![json!({"id": 1}), json!({"id": 2})]);

    let jsonl = read(
        &endpoint,
        "getObject",
        json!({"Bucket": BUCKET, "Key": "in/items.jsonl"}),
        Some(json!({"InputType": "JSONL"})),
    )
    .await
    .expect("JSONL items");
    assert_eq!(jsonl, vec![json!({"id": 1}), json!({"id": 2})]);

    let csv = read(
        &endpoint,
        "getObject",
        json!({"Bucket": BUCKET, "Key": "in/items.csv"}),
        Some(json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"})),
    )
    .await
    .expect("CSV items");
    assert_eq!(
        csv,
        vec![
            json!({"name": "widget", "qty": "3"}),
            json!({"name": "gad,get", "qty": "4"})
        ]
    );

    let tsv = read(
        &endpoint,
        "getObject",
        json!({"Bucket": BUCKET, "Key": "in/items.tsv"}),
        Some(json!({
            "InputType": "CSV", "CSVHeaderLocation": "GIVEN",
            "CSVHeaders": ["a", "b"], "CSVDelimiter": "TAB"
        })),
    )
    .await
    .expect("TSV items");
    assert_eq!(
        tsv,
        vec![json!({"a": "1", "b": "2"}), json!({"a": "3", "b": "4"})]
    );

    // S3 errors are ItemReaderFailed, quoting S3.
    let missing = read(
        &endpoint,
        "getObject",
        json!({"Bucket": BUCKET, "Key": "in/nope.json"}),
        Some(json!({"InputType": "JSON"})),
    )
    .await
    .expect_err("missing key");
    assert_eq!(missing.error_name(), "States.ItemReaderFailed");
    assert!(
        missing.cause_text().contains("Error Code: NoSuchKey"),
        "{}",
        missing.cause_text()
    );
    let not_array = read(
        &endpoint,
        "getObject",
        json!({"Bucket": BUCKET, "Key": "in/items.jsonl"}),
        Some(json!({"InputType": "JSON"})),
    )
    .await
    .expect_err("not one JSON document");
    assert_eq!(not_array.error_name(), "States.ItemReaderFailed");

    // listObjectsV2: AWS's item shape, a prefix, MaxItems.
    for i in 0..5 {
        put(&s3, &format!("list/obj-{i}.txt"), &"x".repeat(i + 1)).await;
    }
    let listed = read(
        &endpoint,
        "listObjectsV2",
        json!({"Bucket": BUCKET, "Prefix": "list/"}),
        None,
    )
    .await
    .expect("listing");
    assert_eq!(listed.len(), 5);
    let first = listed[0].as_object().expect("object");
    let keys: Vec<&String> = first.keys().collect();
    assert_eq!(
        keys,
        ["Etag", "Key", "LastModified", "Size", "StorageClass"]
    );
    assert_eq!(first["Key"], json!("list/obj-0.txt"));
    assert_eq!(first["Size"], json!(1));
    assert_eq!(first["StorageClass"], json!("STANDARD"));
    assert!(first["LastModified"].is_i64(), "{first:?}");
    let etag = first["Etag"].as_str().unwrap_or_default();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let capped = read(
        &endpoint,
        "listObjectsV2",
        json!({"Bucket": BUCKET, "Prefix": "list/"}),
        Some(json!({"MaxItems": 3})),
    )
    .await
    .expect("capped listing");
    assert_eq!(capped.len(), 3);

    // Pagination: pages of two objects.
    let paged = s3
        .list_objects_v2(
            BUCKET,
            &ListObjects {
                prefix: Some("list/".into()),
                page_size: Some(2),
                ..ListObjects::default()
            },
        )
        .await
        .expect("paged listing");
    let paged_keys: Vec<&str> = paged.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        paged_keys,
        [
            "list/obj-0.txt",
            "list/obj-1.txt",
            "list/obj-2.txt",
            "list/obj-3.txt",
            "list/obj-4.txt"
        ]
    );

    // LOAD_AND_FLATTEN: the listed objects' items.
    put(&s3, "flat/a.json", "[1, 2]").await;
    put(&s3, "flat/b.json", "[3]").await;
    let flat = read(
        &endpoint,
        "listObjectsV2",
        json!({"Bucket": BUCKET, "Prefix": "flat/"}),
        Some(json!({"InputType": "JSON", "Transformation": "LOAD_AND_FLATTEN"})),
    )
    .await
    .expect("flattened");
    assert_eq!(flat, vec![json!(1), json!(2), json!(3)]);

    // An S3 Inventory manifest with an uncompressed CSV data file.
    put(
        &s3,
        "inv/data/1.csv",
        "\"src\",\"k1\",\"10\"\n\"src\",\"k2\",\"20\"\n",
    )
    .await;
    put(
        &s3,
        "inv/manifest.json",
        &json!({
            "sourceBucket": "src",
            "destinationBucket": format!("arn:aws:s3:::{BUCKET}"),
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size",
            "files": [{"key": "inv/data/1.csv", "size": 30, "MD5checksum": "x"}]
        })
        .to_string(),
    )
    .await;
    let inventory = read(
        &endpoint,
        "getObject",
        json!({"Bucket": BUCKET, "Key": "inv/manifest.json"}),
        Some(json!({"InputType": "MANIFEST"})),
    )
    .await
    .expect("inventory");
    assert_eq!(
        inventory,
        vec![
            json!({"Bucket": "src", "Key": "k1", "Size": "10"}),
            json!({"Bucket": "src", "Key": "k2", "Size": "20"})
        ]
    );

    // Results: written, then read back.
    let run =
        "arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:0b1c2d3e-aaaa-bbbb-cccc-1234567890ab";
    let child = |n: u32, status: ChildStatus| ChildResult {
        execution_arn: Some(format!(
            "arn:aws:states:us-east-1:123456789012:execution:sm/Map:{n}"
        )),
        state_machine_arn: Some("arn:aws:states:us-east-1:123456789012:stateMachine:sm/Map".into()),
        name: Some(n.to_string()),
        status,
        input: format!("{{\"id\":{n}}}"),
        output: (status == ChildStatus::Succeeded).then(|| format!("{{\"done\":{n}}}")),
        error: (status == ChildStatus::Failed).then(|| "Oops".to_owned()),
        cause: (status == ChildStatus::Failed).then(|| "it failed".to_owned()),
        start_date: Some("2025-02-04T01:49:50.099Z".into()),
        stop_date: Some("2025-02-04T01:49:50.163Z".into()),
        redrive_count: Some(0),
        redrive_status: Some("NOT_REDRIVABLE".into()),
        redrive_status_reason: Some("Execution is SUCCEEDED and cannot be redriven".into()),
    };
    let results = vec![
        child(1, ChildStatus::Succeeded),
        child(2, ChildStatus::Failed),
        child(3, ChildStatus::Succeeded),
    ];
    let details = export(
        &endpoint,
        json!({"Bucket": BUCKET, "Prefix": "out"}),
        None,
        run,
        &results,
    )
    .await
    .expect("results written");
    let dir = "out/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab";
    assert_eq!(
        details,
        json!({"Bucket": BUCKET, "Key": format!("{dir}/manifest.json")})
    );
    let manifest = get_json(&s3, &format!("{dir}/manifest.json")).await;
    assert_eq!(manifest["DestinationBucket"], json!(BUCKET));
    assert_eq!(manifest["MapRunArn"], json!(run));
    assert_eq!(manifest["ResultFiles"]["PENDING"], json!([]));
    let succeeded_ref = &manifest["ResultFiles"]["SUCCEEDED"][0];
    assert_eq!(
        succeeded_ref["Key"],
        json!(format!("{dir}/SUCCEEDED_0.json"))
    );
    let succeeded = get_json(&s3, &format!("{dir}/SUCCEEDED_0.json")).await;
    assert_eq!(
        succeeded_ref["Size"],
        json!(succeeded.to_string().len()),
        "the manifest gives the file's size"
    );
    assert_eq!(succeeded.as_array().map(Vec::len), Some(2));
    assert_eq!(succeeded[0]["Input"], json!("{\"id\":1}"));
    assert_eq!(succeeded[0]["Output"], json!("{\"done\":1}"));
    assert_eq!(succeeded[0]["Status"], json!("SUCCEEDED"));
    let failed = get_json(&s3, &format!("{dir}/FAILED_0.json")).await;
    assert_eq!(failed[0]["Error"], json!("Oops"));
    assert_eq!(failed[0]["Cause"], json!("it failed"));

    // With a WriterConfig: COMPACT outputs, as JSON Lines.
    let details = export(
        &endpoint,
        json!({"Bucket": BUCKET, "Prefix": "compact/"}),
        Some(json!({"OutputType": "JSONL", "Transformation": "COMPACT"})),
        run,
        &results,
    )
    .await
    .expect("results written");
    let key = details["Key"].as_str().unwrap_or_default();
    assert_eq!(
        key,
        "compact/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab/manifest.json"
    );
    let lines = s3
        .get_object(
            BUCKET,
            "compact/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab/SUCCEEDED_0.json",
            None,
        )
        .await
        .expect("compact results");
    assert_eq!(
        String::from_utf8_lossy(&lines),
        "{\"done\":1}\n{\"done\":3}\n"
    );

    // A missing bucket is ResultWriterFailed.
    let e = export(
        &endpoint,
        json!({"Bucket": "no-such-bucket", "Prefix": "x"}),
        None,
        run,
        &results,
    )
    .await
    .expect_err("no bucket");
    assert_eq!(e.error_name(), "States.ResultWriterFailed");
    assert!(
        e.cause_text().contains("NoSuchBucket"),
        "{}",
        e.cause_text()
    );
}

/// A result file larger than one part is a multipart upload (parts of at least 5 MiB, the
/// JSON array running across them; the ETag of such an object ends in `-<parts>`), and the
/// manifest gives its real size. JSON Lines too.
#[tokio::test]
async fn large_result_files_are_uploaded_in_parts() {
    let mut moto = Moto::start();
    moto.ready().await;
    let endpoint = moto.endpoint.clone();
    let s3 = S3::new(&endpoint, REGION).expect("client");
    s3.create_bucket(BUCKET).await.expect("bucket");
    let run = "arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:big";
    // 2,600 outputs of ~4 KiB: ~10.7 MB of entries, so two full parts and a last one.
    let pad = "x".repeat(4096);
    let results: Vec<ChildResult> = (0..2600)
        .map(|n| ChildResult {
            status: ChildStatus::Succeeded,
            output: Some(format!("{{\"n\":{n},\"pad\":\"{pad}\"}}")),
            ..ChildResult::pending(format!("{{\"n\":{n}}}"))
        })
        .collect();
    for (prefix, config) in [
        ("big-json", None),
        (
            "big-jsonl",
            Some(json!({"OutputType": "JSONL", "Transformation": "COMPACT"})),
        ),
    ] {
        let details = export(
            &endpoint,
            json!({"Bucket": BUCKET, "Prefix": prefix}),
            config.clone(),
            run,
            &results,
        )
        .await
        .expect("results written");
        let manifest = get_json(&s3, details["Key"].as_str().unwrap_or_default()).await;
        let file = &manifest["ResultFiles"]["SUCCEEDED"][0];
        let key = file["Key"].as_str().expect("a key").to_owned();
        let listed = s3
            .list_objects_v2(
                BUCKET,
                &ListObjects {
                    prefix: Some(key.clone()),
                    ..ListObjects::default()
                },
            )
            .await
            .expect("listed");
        assert_eq!(listed.len(), 1, "{prefix}: {listed:?}");
        assert!(
            listed[0].etag.ends_with("-3\""),
            "{prefix}: a 3-part upload, ETag {}",
            listed[0].etag
        );
        let body = s3.get_object(BUCKET, &key, None).await.expect("the file");
        assert_eq!(file["Size"], json!(body.len()), "{prefix}");
        assert_eq!(listed[0].size, body.len() as u64, "{prefix}");
        let entries: Vec<Value> = match config {
            None => serde_json::from_slice::<Vec<Value>>(&body).expect("a JSON array"),
            Some(_) => body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).expect("a JSON line"))
                .collect(),
        };
        assert_eq!(entries.len(), results.len(), "{prefix}");
        for (n, entry) in entries.iter().enumerate() {
            let output = match &config {
                None => serde_json::from_str(entry["Output"].as_str().unwrap_or_default())
                    .expect("Output is JSON text"),
                Some(_) => entry.clone(),
            };
            assert_eq!(output["n"], json!(n), "{prefix}: item order");
        }
    }
}

/// A key is the bucket's own: `../other-bucket/secret.json` names an object of the bucket
/// (which S3 allows), never another bucket's object.
#[tokio::test]
async fn item_reader_keys_stay_in_their_bucket() {
    let mut moto = Moto::start();
    moto.ready().await;
    let endpoint = moto.endpoint.clone();
    let s3 = S3::new(&endpoint, REGION).expect("client");
    for bucket in ["wf-bucket", "other-bucket"] {
        s3.create_bucket(bucket).await.expect("create bucket");
    }
    s3.put_object(
        "other-bucket",
        "secret.json",
        b"[\"secret\"]",
        "application/json",
    )
    .await
    .expect("put the secret");
    let escape = json!({"Bucket": "wf-bucket", "Key": "../other-bucket/secret.json"});
    let config = Some(json!({"InputType": "JSON"}));
    let read_escape = || read(&endpoint, "getObject", escape.clone(), config.clone());
    let failure = read_escape().await.expect_err("no such key in wf-bucket");
    assert!(
        failure.cause_text().contains("NoSuchKey")
            || failure.cause_text().contains("does not exist"),
        "{failure:?}"
    );
    // The same key inside wf-bucket is that bucket's object.
    s3.put_object(
        "wf-bucket",
        "../other-bucket/secret.json",
        b"[\"own\"]",
        "application/json",
    )
    .await
    .expect("put a dotted key");
    assert_eq!(read_escape().await.expect("own object"), vec![json!("own")]);
}
