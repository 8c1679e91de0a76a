//! SigV4 for every outbound AWS call (the S3 client, the `aws-sdk:*` and optimized
//! integrations), and the credentials it signs with.
//!
//! Calls to a configured endpoint (`--endpoint`, `--aws-endpoint`: LocalStack, moto) use
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), else `test`/`test`,
//! what local emulators accept ([`env_credentials`]). Calls to AWS itself use the standard
//! provider chain of the AWS SDKs (environment, shared config and credentials files with
//! profiles, web identity, container and instance metadata), cached until they expire
//! ([`aws_credentials`]). Credentials are only ever handed to the signer: never logged,
//! recorded or quoted in an error.

use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::ProvideCredentials;
use tokio::sync::{Mutex, OnceCell};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;

/// The credentials of the environment (`test`/`test` without any).
pub fn env_credentials() -> Credentials {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (key, secret) = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => (key, secret),
        _ => ("test".to_owned(), "test".to_owned()),
    };
    Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "stepwise")
}

/// Credentials are renewed this long before they expire.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// The standard provider chain's credentials, cached until shortly before they expire. The
/// error is the chain's (it names providers, never secrets).
pub async fn aws_credentials() -> Result<Credentials, String> {
    static CHAIN: OnceCell<DefaultCredentialsChain> = OnceCell::const_new();
    static CACHED: Mutex<Option<Credentials>> = Mutex::const_new(None);
    let mut cached = CACHED.lock().await;
    if let Some(c) = cached.as_ref() {
        let fresh = c
            .expiry()
            .is_none_or(|at| at > SystemTime::now() + EXPIRY_MARGIN);
        if fresh {
            return Ok(c.clone());
        }
    }
    let chain = CHAIN
        .get_or_init(|| DefaultCredentialsChain::builder().build())
        .await;
    let fresh = chain.provide_credentials().await.map_err(|e| {
        format!("Unable to load credentials from any of the providers in the chain: {e}")
    })?;
    *cached = Some(fresh.clone());
    Ok(fresh)
}

/// What to sign for: the region, the signing name (`s3`, `dynamodb`, `execute-api`…).
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// The SigV4 headers for a request (`authorization`, `x-amz-date`, `x-amz-security-token`,
/// and for S3 `x-amz-content-sha256`). The error never contains the credentials.
pub fn headers(
    credentials: &Credentials,
    scope: &Scope<'_>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, String> {
    let mut settings = SigningSettings::default();
    if scope.service == "s3" {
        // S3 wants the payload hash header, single-encoded paths and no path normalization.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    let (signed, _) = instructions.into_parts();
    Ok(signed
        .into_iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect())
}
