//! A small S3 client: what a Distributed Map's `ItemReader` and `ResultWriter` need
//! (GetObject, ListObjectsV2 with pagination, PutObject, multipart uploads) against the
//! S3-compatible endpoint the engine is configured with (`--aws-endpoint`: moto, LocalStack,
//! MinIO, …).
//!
//! Requests use path-style URLs (`http://host:port/bucket/key`) and are signed with SigV4
//! ([`crate::integrations::sigv4`]), because MinIO and LocalStack-style endpoints check
//! signatures; the region is the caller's. Checked against
//! moto with IAM authentication on: it accepts these signatures wherever it accepts boto3's,
//! and rejects both alike for keys with `+`, `=`, `(` or non-ASCII characters and for a
//! `Prefix` containing `/` (moto's verifier, not the signing).
//!
//! Every failure is a value ([`S3Error`]): an S3 error document, no answer at all, or an
//! answer that cannot be read. Nothing here panics on what the network sends.

use std::fmt;
use std::time::Duration;

use aws_credential_types::Credentials;

use crate::integrations::{percent_encode as encode, sigv4};

/// How long one request may take, body included (objects can be large).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The smallest part of a multipart upload S3 accepts, the last part excepted.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// A failed S3 call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Error {
    /// S3 answered with an error (`<Error><Code>NoSuchKey</Code>…`).
    Service {
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    /// No answer: the endpoint is invalid, unreachable, or the request timed out.
    Transport(String),
    /// An answer that is not what S3 sends (unreadable XML, a missing field).
    Response(String),
}

impl fmt::Display for S3Error {
    /// The AWS Java SDK's rendering, the form Step Functions quotes in causes:
    /// `The specified key does not exist. (Service: Amazon S3; Status Code: 404; Error Code:
    /// NoSuchKey; Request ID: …; Proxy: null)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Error::Service {
                status,
                code,
                message,
                request_id,
            } => write!(
                f,
                "{message} (Service: Amazon S3; Status Code: {status}; Error Code: {code}; \
                 Request ID: {request_id}; Proxy: null)"
            ),
            S3Error::Transport(e) => write!(f, "Unable to execute HTTP request: {e}"),
            S3Error::Response(e) => write!(f, "Unable to unmarshall response: {e}"),
        }
    }
}

impl std::error::Error for S3Error {}

/// One object of a ListObjectsV2 answer (`<Contents>`), its fields as S3 sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    /// With its double quotes, as S3 sends it: `"\"9b2cf535f27731c974343645a3985328\""`.
    pub etag: String,
    /// ISO 8601, as S3 sends it: `2024-05-01T12:00:00.000Z`.
    pub last_modified: String,
    pub size: u64,
    pub storage_class: String,
}

/// What to list: ListObjectsV2's request parameters that an `ItemReader` may pass.
#[derive(Debug, Clone, Default)]
pub struct ListObjects {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    /// Stop once this many objects were collected (the reader's `MaxItems`).
    pub limit: Option<usize>,
    /// Objects per page (`max-keys`); S3's default (1,000) when `None`.
    pub page_size: Option<u32>,
}

/// An S3 endpoint, a region and credentials. Cheap to build; build one per Map Run.
#[derive(Debug, Clone)]
pub struct S3 {
    endpoint: String,
    region: String,
    credentials: Credentials,
    client: reqwest::Client,
}

impl S3 {
    /// A client for `endpoint` (`http://host:port`), credentials from the environment.
    pub fn new(endpoint: &str, region: &str) -> Result<S3, S3Error> {
        S3::with_credentials(endpoint, region, sigv4::env_credentials())
    }

    /// A client with explicit credentials.
    pub fn with_credentials(
        endpoint: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<S3, S3Error> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&endpoint) {
            Ok(url) if url.host_str().is_some() && matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(S3Error::Transport(format!(
                    "invalid S3 endpoint '{endpoint}': expected http://host[:port]"
                )))
            }
        }
        // Not pooled: a Map Run's client may outlive the runtime it was made on (tests).
        // The endpoint is the operator's (`--aws-endpoint`), not a workflow's.
        let client = crate::integrations::build_client(false, true).map_err(S3Error::Transport)?;
        Ok(S3 {
            endpoint,
            region: region.to_owned(),
            credentials,
            client,
        })
    }

    /// GetObject: the object's bytes (of `version_id` when given).
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Vec<u8>, S3Error> {
        let query: Vec<(&str, &str)> = version_id.map(|v| ("versionId", v)).into_iter().collect();
        let answer = self.send("GET", bucket, key, &query, &[], None).await?;
        Ok(answer.body)
    }

    /// CreateBucket (in the client's region). Succeeds if the caller already owns the bucket.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let body = match self.region.as_str() {
            "us-east-1" => String::new(),
            region => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ),
        };
        match self
            .send("PUT", bucket, "", &[], body.as_bytes(), None)
            .await
        {
            Err(S3Error::Service { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            other => other.map(drop),
        }
    }

    /// PutObject.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        content_type: &str,
    ) -> Result<(), S3Error> {
        self.send("PUT", bucket, key, &[], body, Some(content_type))
            .await
            .map(drop)
    }

    /// CreateMultipartUpload: the upload id.
    pub async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
    ) -> Result<String, S3Error> {
        let answer = self
            .send(
                "POST",
                bucket,
                key,
                &[("uploads", "")],
                &[],
                Some(content_type),
            )
            .await?;
        let text = String::from_utf8_lossy(&answer.body);
        xml::child_text(&text, "UploadId").ok_or_else(|| {
            S3Error::Response("the CreateMultipartUpload answer has no UploadId".into())
        })
    }

    /// UploadPart: the part's ETag, which [`S3::complete_multipart_upload`] names it by.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &[u8],
    ) -> Result<String, S3Error> {
        let number = part_number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", upload_id)];
        let answer = self.send("PUT", bucket, key, &query, body, None).await?;
        answer
            .etag
            .ok_or_else(|| S3Error::Response("the UploadPart answer has no ETag".into()))
    }

    /// CompleteMultipartUpload of `parts` (number, ETag), in order. S3 may report a failure
    /// in a 200 answer's body: that is an error too.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<(), S3Error> {
        let body = complete_body(parts);
        let query = [("uploadId", upload_id)];
        let answer = self
            .send("POST", bucket, key, &query, body.as_bytes(), None)
            .await?;
        let text = String::from_utf8_lossy(&answer.body);
        if xml::children(&text, "Error").is_empty() {
            return Ok(());
        }
        Err(service_error(200, &answer.body, String::new()))
    }

    /// AbortMultipartUpload: the parts uploaded so far are dropped.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        let query = [("uploadId", upload_id)];
        self.send("DELETE", bucket, key, &query, &[], None)
            .await
            .map(drop)
    }

    /// ListObjectsV2, every page (following `NextContinuationToken`), in S3's key order.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        request: &ListObjects,
    ) -> Result<Vec<ObjectSummary>, S3Error> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![("list-type", "2")];
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            if let Some(p) = &request.prefix {
                query.push(("prefix", p));
            }
            if let Some(d) = &request.delimiter {
                query.push(("delimiter", d));
            }
            if let Some(s) = &request.start_after {
                query.push(("start-after", s));
            }
            let page_size = request.page_size.map(|n| n.to_string());
            if let Some(n) = &page_size {
                query.push(("max-keys", n));
            }
            let answer = self.send("GET", bucket, "", &query, &[], None).await?;
            let page = parse_list_page(&answer.body)?;
            objects.extend(page.objects);
            if let Some(limit) = request.limit {
                if objects.len() >= limit {
                    objects.truncate(limit);
                    return Ok(objects);
                }
            }
            match page.next_token {
                Some(next) if page.truncated && token.as_deref() != Some(next.as_str()) => {
                    token = Some(next)
                }
                _ => return Ok(objects),
            }
        }
    }

    /// Signs and sends one request; a 2xx answer, else the error it carries.
    async fn send(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        query: &[(&str, &str)],
        body: &[u8],
        content_type: Option<&str>,
    ) -> Result<Answer, S3Error> {
        let url = object_url(&self.endpoint, bucket, key, query);
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let signed = self.sign(method, &url, &headers, body)?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| S3Error::Transport(e.to_string()))?;
        let mut req = self
            .client
            .request(method, &url)
            .timeout(REQUEST_TIMEOUT)
            .body(body.to_vec());
        for (name, value) in headers
            .iter()
            .copied()
            .chain(signed.iter().map(|(n, v)| (*n, v.as_str())))
        {
            req = req.header(name, value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| S3Error::Transport(crate::integrations::error_chain(&e)))?;
        let status = resp.status().as_u16();
        let header_id = resp
            .headers()
            .get("x-amz-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| S3Error::Transport(crate::integrations::error_chain(&e)))?;
        if (200..300).contains(&status) {
            return Ok(Answer {
                body: bytes.to_vec(),
                etag,
            });
        }
        Err(service_error(status, &bytes, header_id))
    }

    /// The SigV4 headers for a request.
    fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>, S3Error> {
        let scope = sigv4::Scope {
            region: &self.region,
            service: "s3",
        };
        sigv4::headers(&self.credentials, &scope, method, url, headers, body)
            .map_err(S3Error::Transport)
    }
}

/// A successful answer: its body, and the `ETag` header when there is one.
struct Answer {
    body: Vec<u8>,
    etag: Option<String>,
}

/// CompleteMultipartUpload's request body.
fn complete_body(parts: &[(u32, String)]) -> String {
    let mut body =
        String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (number, etag) in parts {
        body.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            xml::escape(etag)
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// `endpoint/bucket/key?query`, each part percent-encoded as SigV4 expects. The key keeps
/// its slashes, unless one of its segments is `.` or `..`: URL parsers remove those with
/// the segment before them (`%2E` too), which would take the request out of its bucket
/// (`../other-bucket/secret.json`), so such a key is sent as one segment, its slashes
/// encoded, which S3 reads back as the same key.
fn object_url(endpoint: &str, bucket: &str, key: &str, query: &[(&str, &str)]) -> String {
    let mut url = format!("{endpoint}/{}", encode(bucket, false));
    if !key.is_empty() {
        let dot_segment = key.split('/').any(|s| s == "." || s == "..");
        url.push('/');
        url.push_str(&encode(key, !dot_segment));
    }
    for (i, (name, value)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&encode(name, false));
        url.push('=');
        url.push_str(&encode(value, false));
    }
    url
}

/// The error an S3 error answer carries; the status alone when its body says nothing.
fn service_error(status: u16, body: &[u8], header_id: String) -> S3Error {
    let text = String::from_utf8_lossy(body);
    let field = |name| {
        xml::children(&text, "Error")
            .first()
            .and_then(|e| xml::child_text(e, name))
    };
    let code = field("Code").unwrap_or_else(|| {
        match status {
            301 => "PermanentRedirect",
            403 => "AccessDenied",
            404 => "NotFound",
            _ => "ServiceUnavailable",
        }
        .to_owned()
    });
    let message = field("Message").unwrap_or_else(|| format!("HTTP status {status}"));
    let request_id = field("RequestId")
        .or_else(|| (!header_id.is_empty()).then_some(header_id))
        .unwrap_or_else(|| "null".to_owned());
    S3Error::Service {
        status,
        code,
        message,
        request_id,
    }
}

/// One ListObjectsV2 page.
#[derive(Debug)]
struct ListPage {
    objects: Vec<ObjectSummary>,
    truncated: bool,
    next_token: Option<String>,
}

fn parse_list_page(body: &[u8]) -> Result<ListPage, S3Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| S3Error::Response("the ListObjectsV2 answer is not UTF-8".into()))?;
    let Some(result) = xml::children(text, "ListBucketResult").into_iter().next() else {
        return Err(S3Error::Response(
            "the ListObjectsV2 answer has no ListBucketResult".into(),
        ));
    };
    let mut objects = Vec::new();
    for c in xml::children(result, "Contents") {
        let key = xml::child_text(c, "Key")
            .ok_or_else(|| S3Error::Response("an object without a Key".into()))?;
        let size = match xml::child_text(c, "Size") {
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| S3Error::Response(format!("the size of '{key}' is not a number")))?,
            None => 0,
        };
        objects.push(ObjectSummary {
            etag: xml::child_text(c, "ETag").unwrap_or_default(),
            last_modified: xml::child_text(c, "LastModified").unwrap_or_default(),
            size,
            storage_class: xml::child_text(c, "StorageClass")
                .unwrap_or_else(|| "STANDARD".to_owned()),
            key,
        });
    }
    Ok(ListPage {
        objects,
        truncated: xml::child_text(result, "IsTruncated").as_deref() == Some("true"),
        next_token: xml::child_text(result, "NextContinuationToken"),
    })
}

/// Just enough XML for S3's flat answers: elements by name, their text unescaped. No
/// attributes are read; namespaces on the root element are ignored.
mod xml {
    /// The inner text of every element `<name>…</name>` (or `<name …>`) at any depth, in order.
    /// Elements of the same name nested in each other are not expected in S3's answers.
    pub(super) fn children<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let close = format!("</{name}>");
        let mut rest = text;
        while let Some(start) = find_open(rest, name) {
            let after = &rest[start..];
            let Some(gt) = after.find('>') else { break };
            if after[..gt].ends_with('/') {
                out.push("");
                rest = &after[gt + 1..];
                continue;
            }
            let inner = &after[gt + 1..];
            let Some(end) = inner.find(&close) else { break };
            out.push(&inner[..end]);
            rest = &inner[end + close.len()..];
        }
        out
    }

    /// The unescaped text of the first `<name>` element.
    pub(super) fn child_text(text: &str, name: &str) -> Option<String> {
        children(text, name).first().map(|t| unescape(t))
    }

    /// The offset of the next `<name>`, `<name/>` or `<name …>` tag.
    fn find_open(text: &str, name: &str) -> Option<usize> {
        let open = format!("<{name}");
        let mut from = 0;
        while let Some(i) = text[from..].find(&open) {
            let at = from + i;
            match text[at + open.len()..].chars().next() {
                Some('>' | '/' | ' ' | '\t' | '\r' | '\n') => return Some(at),
                _ => from = at + open.len(),
            }
        }
        None
    }

    /// `&`, `<` and `>` as entities, for element text.
    pub(super) fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    /// Entities (`&amp;`, `&#34;`, `&#x22;`, …) and CDATA sections, resolved.
    pub(super) fn unescape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("<![CDATA[") {
                let end = after.find("]]>").unwrap_or(after.len());
                out.push_str(&after[..end]);
                rest = after.get(end + 3..).unwrap_or("");
                continue;
            }
            let Some(c) = rest.chars().next() else { break };
            if c == '&' {
                if let Some(semi) = rest.find(';') {
                    let entity = &rest[1..semi];
                    let decoded = match entity {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => entity
                            .strip_prefix("#x")
                            .or_else(|| entity.strip_prefix("#X"))
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                            .and_then(char::from_u32),
                    };
                    if let Some(d) = decoded {
                        out.push(d);
                        rest = &rest[semi + 1..];
                        continue;
                    }
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_path_style_and_encoded() {
        assert_eq!(
            object_url("http://h:1", "b", "a dir/ü+x.json", &[]),
            "http://h:1/b/a%20dir/%C3%BC%2Bx.json"
        );
        assert_eq!(
            object_url(
                "http://h:1",
                "b",
                "",
                &[("list-type", "2"), ("prefix", "a/b c")]
            ),
            "http://h:1/b?list-type=2&prefix=a%2Fb%20c"
        );
    }

    #[test]
    fn keys_cannot_leave_their_bucket() {
        for key in ["../other/secret.json", "a/../../other/x", "./x", "a/.."] {
            let url = object_url("http://h:1", "wf-bucket", key, &[]);
            let parsed = reqwest::Url::parse(&url).expect("a URL");
            let path = parsed.path();
            assert!(path.starts_with("/wf-bucket/"), "{key} -> {path}");
            assert_eq!(path.matches('/').count(), 2, "{key} -> {path}");
        }
        // Keys with dots that are not whole segments keep their slashes.
        let url = object_url("http://h:1", "b", "a/..b/c.", &[]);
        assert_eq!(url, "http://h:1/b/a/..b/c.");
    }

    #[test]
    fn list_pages_are_parsed() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>a&amp;b.json</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified>
<ETag>&quot;9b2c&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>c.csv</Key><LastModified>2024-05-01T12:00:01.000Z</LastModified>
<ETag>"ab"</ETag><Size>3</Size></Contents>
<NextContinuationToken>tok+1</NextContinuationToken></ListBucketResult>"#;
        let page = parse_list_page(body).expect("page");
        assert!(page.truncated);
        assert_eq!(page.next_token.as_deref(), Some("tok+1"));
        assert_eq!(
            page.objects[0],
            ObjectSummary {
                key: "a&b.json".into(),
                etag: "\"9b2c\"".into(),
                last_modified: "2024-05-01T12:00:00.000Z".into(),
                size: 12,
                storage_class: "STANDARD".into(),
            }
        );
        assert_eq!(page.objects[1].etag, "\"ab\"");
        assert_eq!(page.objects[1].storage_class, "STANDARD");
        assert!(parse_list_page(b"<Error/>").is_err());
        assert!(parse_list_page(b"\xff").is_err());
    }

    #[test]
    fn errors_render_like_the_java_sdk() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><RequestId>R1</RequestId></Error>";
        let e = service_error(404, body, String::new());
        assert_eq!(
            e.to_string(),
            "The specified key does not exist. (Service: Amazon S3; Status Code: 404; \
             Error Code: NoSuchKey; Request ID: R1; Proxy: null)"
        );
        let e = service_error(403, b"", "H1".into());
        assert!(
            matches!(e, S3Error::Service { ref code, ref request_id, .. } if code == "AccessDenied" && request_id == "H1")
        );
    }

    #[test]
    fn multipart_completion_lists_the_parts() {
        assert_eq!(
            complete_body(&[(1, "\"a1\"".into()), (2, "\"b<&\"".into())]),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Part><PartNumber>1</PartNumber><ETag>\"a1\"</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>\"b&lt;&amp;\"</ETag></Part>\
             </CompleteMultipartUpload>"
        );
        assert_eq!(
            object_url("http://h:1", "b", "k", &[("uploads", "")]),
            "http://h:1/b/k?uploads="
        );
    }

    #[test]
    fn xml_text_is_unescaped() {
        assert_eq!(
            xml::unescape("a&lt;b&#62;&#x41;&bogus;<![CDATA[&x]]>"),
            "a<b>A&bogus;&x"
        );
    }

    #[test]
    fn bad_endpoints_are_errors() {
        assert!(S3::new("not a url", "us-east-1").is_err());
        assert!(S3::new("ftp://h", "us-east-1").is_err());
        assert!(S3::new("http://127.0.0.1:9/", "us-east-1").is_ok());
    }
}
