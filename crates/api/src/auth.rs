//! Who is calling: `--auth sigv4` verifies each request's AWS Signature Version 4 against a
//! credentials file and answers as AWS does when it fails; the account of the signing key is
//! the caller's account, so two keys of different accounts cannot see each other's
//! resources. `--auth none` (the default) accepts any signature, as Step Functions Local
//! does, and every caller is the configured account.
//!
//! The signature is recomputed with aws-sigv4 (the SDKs' own signer) over the headers the
//! client says it signed, at the time it says it signed, and compared in constant time.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// How far a request's `X-Amz-Date` may be from the server's clock (AWS: 15 minutes).
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The signing name of Step Functions.
const SERVICE: &str = "states";

/// How requests are authenticated.
pub enum Auth {
    /// Any signature, or none; every caller is `account`.
    Open { account: String },
    /// Signatures verified against these keys.
    SigV4(Keys),
}

/// Access keys by id: each one's secret and account.
pub struct Keys(HashMap<String, Key>);

struct Key {
    secret: String,
    account: String,
}

impl Keys {
    /// Reads a credentials file in the AWS shared-credentials format: `[profile]` sections
    /// with `aws_access_key_id`, `aws_secret_access_key` and `aws_account_id` (the account
    /// the key acts in; `default_account` when absent). Comments start with `#` or `;`.
    pub fn parse(text: &str, default_account: &str) -> Result<Keys, String> {
        let mut profiles: Vec<(String, HashMap<String, String>)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                profiles.push((name.trim().to_owned(), HashMap::new()));
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected 'key = value'", n + 1))?;
            let Some((_, settings)) = profiles.last_mut() else {
                return Err(format!("line {}: a setting before any [profile]", n + 1));
            };
            settings.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        let mut keys = HashMap::new();
        for (name, mut settings) in profiles {
            let mut take = |k: &str| settings.remove(k);
            let (Some(id), Some(secret)) =
                (take("aws_access_key_id"), take("aws_secret_access_key"))
            else {
                return Err(format!(
                    "profile [{name}] needs aws_access_key_id and aws_secret_access_key"
                ));
            };
            let account = take("aws_account_id").unwrap_or_else(|| default_account.to_owned());
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "profile [{name}]: aws_account_id must be 12 digits"
                ));
            }
            keys.insert(id, Key { secret, account });
        }
        if keys.is_empty() {
            return Err("no access keys".into());
        }
        Ok(Keys(keys))
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'h> {
    key_id: &'h str,
    date: &'h str,
    region: &'h str,
    service: &'h str,
    signed_headers: Vec<&'h str>,
    signature: &'h str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let (key_id, date, region, service, terminator) = (
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
    );
    if terminator != "aws4_request" || scope.next().is_some() {
        return None;
    }
    Some(Authorization {
        key_id,
        date,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

impl Auth {
    /// The account of a request's caller, or AWS's error for it; `now` is the server's
    /// clock.
    pub fn account(
        &self,
        method: &str,
        uri: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let keys = match self {
            Auth::Open { account } => return Ok(account.clone()),
            Auth::SigV4(keys) => keys,
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let authorization = header("authorization").and_then(parse_authorization);
        let Some(auth) = authorization else {
            return Err(match header("authorization") {
                None => auth_error(
                    StatusCode::FORBIDDEN,
                    "MissingAuthenticationTokenException",
                    "Missing Authentication Token".into(),
                ),
                Some(_) => auth_error(
                    StatusCode::BAD_REQUEST,
                    "IncompleteSignatureException",
                    "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with an AWS4-HMAC-SHA256 algorithm.".into(),
                ),
            });
        };
        if !auth.signed_headers.contains(&"host") {
            return Err(signature_mismatch(
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
            ));
        }
        let key = keys.0.get(auth.key_id).ok_or_else(|| {
            auth_error(
                StatusCode::BAD_REQUEST,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.".into(),
            )
        })?;
        let stamp = header("x-amz-date").unwrap_or_default();
        let signed_at = parse_amz_date(stamp)
            .filter(|_| stamp.get(..8) == Some(auth.date))
            .ok_or_else(|| {
                auth_error(
                    StatusCode::BAD_REQUEST,
                    "IncompleteSignatureException",
                    format!("Date must be in ISO-8601 'basic format'. Got '{stamp}'. See http://en.wikipedia.org/wiki/ISO_8601 and the credential scope date"),
                )
            })?;
        check_skew(stamp, signed_at, now)?;
        if auth.service != SERVICE {
            return Err(signature_mismatch(format!(
                "Credential should be scoped to correct service: '{SERVICE}'. "
            )));
        }
        let body_hash = hex(&Sha256::digest(body));
        if header("x-amz-content-sha256").is_some_and(|h| h != body_hash) {
            return Err(signature_mismatch(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
        let expected = signature(key, &auth, method, uri, headers, body, signed_at)?;
        if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            return Err(signature_mismatch(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
            ));
        }
        Ok(key.account.clone())
    }
}

/// The signature of the request as the holder of `key` would have made it.
fn signature(
    key: &Key,
    auth: &Authorization<'_>,
    method: &str,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
    signed_at: SystemTime,
) -> Result<String, ApiError> {
    // The signer adds `x-amz-date` (from the time) and `x-amz-security-token` (from the
    // identity) itself; every other header the client signed is passed as it came.
    let token = headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut signed = Vec::new();
    for name in &auth.signed_headers {
        if matches!(*name, "x-amz-date" | "x-amz-security-token") {
            continue;
        }
        let value = headers.get(*name).and_then(|v| v.to_str().ok());
        let value = value.ok_or_else(|| {
            signature_mismatch(format!(
                "The request signs the header '{name}', which it does not carry."
            ))
        })?;
        signed.push((*name, value));
    }
    let credentials = Credentials::new(auth.key_id, &key.secret, token, None, "credentials-file");
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let unsignable =
        |e: &dyn std::fmt::Display| signature_mismatch(format!("Unverifiable signature: {e}"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| unsignable(&e))?
        .into();
    let request = SignableRequest::new(method, uri, signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| unsignable(&e))?;
    let (_, signature) = sign(request, &params)
        .map_err(|e| unsignable(&e))?
        .into_parts();
    Ok(signature)
}

/// `20261203T092500Z` as a time.
fn parse_amz_date(stamp: &str) -> Option<SystemTime> {
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = stamp.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?
    );
    let millis = u64::try_from(asl::timestamp::parse(&iso)?).ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(millis))
}

/// AWS's answers for a request signed too long ago or too far ahead.
fn check_skew(stamp: &str, signed_at: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    let format = |t: SystemTime| {
        let millis = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let iso = asl::timestamp::format_millis(millis);
        // 2026-12-03T09:25:00.000Z → 20261203T092500Z
        let digits: String = iso.chars().filter(char::is_ascii_digit).collect();
        format!(
            "{}T{}Z",
            &digits[..8.min(digits.len())],
            digits.get(8..14).unwrap_or("")
        )
    };
    if signed_at + MAX_SKEW < now {
        return Err(signature_mismatch(format!(
            "Signature expired: {stamp} is now earlier than {} ({} - 15 min.)",
            format(now - MAX_SKEW),
            format(now)
        )));
    }
    if signed_at > now + MAX_SKEW {
        return Err(signature_mismatch(format!(
            "Signature not yet current: {stamp} is still later than {} ({} + 15 min.)",
            format(now + MAX_SKEW),
            format(now)
        )));
    }
    Ok(())
}

fn signature_mismatch(message: String) -> ApiError {
    auth_error(
        StatusCode::BAD_REQUEST,
        "InvalidSignatureException",
        message,
    )
}

fn auth_error(status: StatusCode, code: &str, message: String) -> ApiError {
    ApiError {
        status,
        ..ApiError::coral(code, message)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference, so timing does not tell how much of a
/// guessed signature was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first Step Functions resource of another account that a request names: an ARN in any
/// member whose name ends in `Arn` (`stateMachineArn`, `executionArn`, `resourceArn`, ... and the version
/// ARNs of an alias's routing), or the execution a task token belongs to.
pub fn foreign_resource(body: &serde_json::Value, account: &str) -> Option<String> {
    use serde_json::Value;
    // Only Step Functions resources: a role (`roleArn`) may well be another account's.
    let foreign = |arn: &str| {
        let mut parts = arn.strip_prefix("arn:")?.split(':').skip(1);
        let (service, owner) = (parts.next()?, parts.nth(1)?);
        (service == "states" && owner != account).then(|| arn.to_owned())
    };
    let mut stack = vec![body];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(members) => {
                for (name, value) in members {
                    let named = match (name.as_str(), value) {
                        ("taskToken", Value::String(t)) => asl::task_token::parse_task_token(t)
                            .and_then(|named| foreign(&named.execution_arn)),
                        (n, Value::String(arn)) if n.ends_with("Arn") => foreign(arn),
                        _ => None,
                    };
                    if named.is_some() {
                        return named;
                    }
                    stack.push(value);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    None
}

/// AWS's answer to a caller naming another account's resource.
pub fn access_denied(account: &str, operation: &str, resource: &str) -> ApiError {
    engine::Error::access_denied(account, operation, resource).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_files() {
        let keys = Keys::parse(
            "# two accounts\n[alice]\naws_access_key_id = AKIDALICE\naws_secret_access_key = s1\naws_account_id = 111111111111\n\n[bob]\naws_access_key_id=AKIDBOB\naws_secret_access_key=s2\n",
            "123456789012",
        )
        .expect("parses");
        assert_eq!(keys.0["AKIDALICE"].account, "111111111111");
        assert_eq!(keys.0["AKIDBOB"].account, "123456789012");
        for bad in [
            "",
            "x = 1",
            "[p]\naws_access_key_id = A",
            "[p]\naws_access_key_id=A\naws_secret_access_key=B\naws_account_id=12",
        ] {
            assert!(Keys::parse(bad, "123456789012").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn foreign_resources_are_found() {
        let mine = "arn:aws:states:us-east-1:111111111111:stateMachine:a";
        let theirs = "arn:aws:states:us-east-1:222222222222:execution:b:c";
        let token = asl::task_token::task_token(&Default::default(), theirs, 3);
        for (body, found) in [
            (json!({"stateMachineArn": mine}), None),
            (json!({"executionArn": theirs}), Some(theirs)),
            (
                json!({"routingConfiguration": [{"stateMachineVersionArn": mine}, {"stateMachineVersionArn": theirs}]}),
                Some(theirs),
            ),
            (json!({"taskToken": token}), Some(theirs)),
            (json!({"name": theirs}), None),
            (json!({"roleArn": "arn:aws:iam::222222222222:role/r"}), None),
        ] {
            assert_eq!(
                foreign_resource(&body, "111111111111").as_deref(),
                found,
                "{body}"
            );
        }
    }

    #[test]
    fn amz_dates() {
        let t = parse_amz_date("20261203T092500Z").expect("a date");
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        assert_eq!(
            asl::timestamp::format_millis(ms as i64),
            "2026-12-03T09:25:00.000Z"
        );
        for bad in [
            "2026-12-03T09:25:00Z",
            "20261203T092500",
            "2026120XT092500Z",
            "",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }
}
