//! Which credentials a task's calls sign with.
//!
//! Without a role, the base credentials of [`sigv4`]: the environment's for a configured
//! endpoint, the standard provider chain's for AWS itself. With a role (the Task's
//! `Credentials`, or under `--assume-execution-role` its state machine's `roleArn`), the
//! credentials STS `AssumeRole` gives for it, asked with the base credentials through
//! aws-config's `AssumeRoleProvider` at the STS endpoint (`--endpoint sts=URL`,
//! `--aws-endpoint`, else AWS's regional one), and cached per role (and external id) until
//! shortly before they expire. A Task's `Credentials` role is assumed with the
//! `sts:ExternalId` AWS passes, the state machine's ARN ([`task_credentials`]). Credentials
//! are only ever handed to the signer: never logged, recorded or quoted in an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use asl::error::names;
use asl::interpreter::Dispatch;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;

use super::{configured_endpoint, error_chain, sigv4};
use crate::tasks::{failed, TaskReply};
use crate::Engine;

/// The session name of every assumed role.
const SESSION_NAME: &str = "stepwise";

/// Assumed credentials by role ARN and external id, each behind a lock of its own so that
/// one role's renewal holds up only the calls that wait for that role.
#[derive(Default)]
pub(crate) struct Assumed(Mutex<HashMap<RoleKey, Arc<tokio::sync::Mutex<Option<Credentials>>>>>);

/// A role ARN and the external id it is assumed with.
type RoleKey = (String, Option<String>);

/// Credentials that could not be had.
#[derive(Debug)]
pub enum IdentityError {
    /// The provider chain has none (calls to AWS itself).
    Base(String),
    /// STS did not give credentials for the role.
    AssumeRole { role: String, reason: String },
}

impl IdentityError {
    /// The task failure: `client` names the service's `SdkClientException` (`Lambda`,
    /// `DynamoDb`) for missing base credentials; a role that cannot be assumed fails the task
    /// with `States.TaskFailed`, which `States.ALL` and `States.TaskFailed` catch.
    pub fn reply(self, client: &str) -> TaskReply {
        match self {
            IdentityError::Base(e) => failed(&format!("{client}.SdkClientException"), e),
            IdentityError::AssumeRole { role, reason } => failed(
                names::TASK_FAILED,
                format!("Unable to assume the role '{role}': {reason}"),
            ),
        }
    }
}

/// The credentials a task's call to a service known by `names` (see [`configured_endpoint`])
/// signs with in `region`: those of the role in `d.role_arn` (if any), assumed with the
/// external id of [`external_id`].
pub async fn task_credentials(
    engine: &Engine,
    names: &[&str],
    d: &Dispatch,
    region: &str,
) -> Result<Credentials, IdentityError> {
    let external_id = external_id(engine, d).await;
    credentials(
        engine,
        names,
        d.role_arn.as_deref(),
        external_id.as_deref(),
        region,
    )
    .await
}

/// The credentials a call to a service known by `names` signs with, assuming `role` (if any,
/// with `external_id`) in `region`.
pub async fn credentials(
    engine: &Engine,
    names: &[&str],
    role: Option<&str>,
    external_id: Option<&str>,
    region: &str,
) -> Result<Credentials, IdentityError> {
    let Some(role) = role else {
        return base(engine, names).await;
    };
    let key = (role.to_owned(), external_id.map(str::to_owned));
    let slot = crate::lock::lock(&engine.inner.assumed.0)
        .entry(key)
        .or_default()
        .clone();
    let mut slot = slot.lock().await;
    if let Some(c) = slot.as_ref().filter(|c| fresh(c)) {
        return Ok(c.clone());
    }
    let assumed = assume(engine, role, external_id, region).await?;
    *slot = Some(assumed.clone());
    Ok(assumed)
}

/// The `sts:ExternalId` a task's role is assumed with. AWS passes the state machine's ARN
/// when it assumes the role of a Task's `Credentials` (its cross-account guide,
/// "Cross-account access for .sync integration pattern", has that role's trust policy
/// require `sts:ExternalId` = `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`). None for
/// the execution's own role under `--assume-execution-role` (a `Credentials` role equal to
/// it is taken for it), nor outside an execution (TestState: its dispatch has no token).
async fn external_id(engine: &Engine, d: &Dispatch) -> Option<String> {
    let role = d.role_arn.as_deref()?;
    let attempt = asl::task_token::parse_task_token(&d.token)?;
    if engine.config().assume_execution_role
        && engine
            .execution_role(&attempt.execution_arn)
            .await
            .as_deref()
            == Some(role)
    {
        return None;
    }
    let execution = crate::arn::Arn::parse(&attempt.execution_arn)?;
    Some(crate::arn::state_machine_of_execution(&execution))
}

/// The base credentials for a call to a service known by `names`.
async fn base(engine: &Engine, names: &[&str]) -> Result<Credentials, IdentityError> {
    match configured_endpoint(engine.config(), names) {
        Some(_) => Ok(sigv4::env_credentials()),
        None => sigv4::aws_credentials().await.map_err(IdentityError::Base),
    }
}

/// Whether credentials are good for a while yet.
fn fresh(c: &Credentials) -> bool {
    c.expiry()
        .is_none_or(|at| at > SystemTime::now() + sigv4::EXPIRY_MARGIN)
}

/// STS `AssumeRole` of `role` (with `external_id`) with the base credentials for STS.
async fn assume(
    engine: &Engine,
    role: &str,
    external_id: Option<&str>,
    region: &str,
) -> Result<Credentials, IdentityError> {
    let refused = |reason: String| IdentityError::AssumeRole {
        role: role.to_owned(),
        reason,
    };
    let base = base(engine, &["sts"])
        .await
        .map_err(|e| refused(e.to_string()))?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(base);
    if let Some(url) = configured_endpoint(engine.config(), &["sts"]) {
        loader = loader.endpoint_url(url);
    }
    let conf = loader.load().await;
    let mut builder = AssumeRoleProvider::builder(role).session_name(SESSION_NAME);
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.configure(&conf).build().await;
    provider
        .provide_credentials()
        .await
        .map_err(|e| refused(error_chain(&e)))
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityError::Base(e) => f.write_str(e),
            IdentityError::AssumeRole { role, reason } => {
                write!(f, "unable to assume the role '{role}': {reason}")
            }
        }
    }
}
