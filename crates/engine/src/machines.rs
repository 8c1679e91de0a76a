//! State machine operations: create, describe, update, delete, list, tags.

use asl::definition::{invalid_definition_message, Definition};
use serde_json::Value;
use store::{StateMachineRecord, StateMachineType};

use crate::{arn, Engine, Error, Result};

/// The most tags one resource (state machine, activity) can have.
pub const MAX_TAGS: usize = 50;

/// AWS's `TooManyTags` when `tags` would put more than [`MAX_TAGS`] on `resource_arn`.
pub(crate) fn check_tag_count(resource_arn: &str, tags: &[(String, String)]) -> Result<()> {
    if tags.len() <= MAX_TAGS {
        return Ok(());
    }
    Err(Error::TooManyTags {
        message: format!(
            "Too many tags: a resource can have at most {MAX_TAGS} tags, {} were given",
            tags.len()
        ),
        resource_name: resource_arn.to_owned(),
    })
}

/// A logging level other than `OFF` needs exactly one destination, and no level takes more.
fn check_logging(configuration: Option<&str>) -> Result<()> {
    let Some(config) = configuration.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
        return Ok(());
    };
    let level = config.get("level").and_then(Value::as_str).unwrap_or("OFF");
    let destinations = config
        .get("destinations")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if destinations > 1 || (level != "OFF" && destinations == 0) {
        return Err(Error::InvalidLoggingConfiguration(
            "Invalid Logging Configuration: Must specify exactly one Log Destination.".into(),
        ));
    }
    Ok(())
}

/// What `CreateStateMachine` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateStateMachine {
    pub region: String,
    /// The account the state machine belongs to (the caller's).
    pub account: String,
    pub name: String,
    pub definition: String,
    pub role_arn: String,
    /// `STANDARD` (default) or `EXPRESS`.
    pub kind: Option<StateMachineType>,
    pub logging_configuration: Option<String>,
    pub tracing_configuration: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// What `UpdateStateMachine` asks for; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UpdateStateMachine {
    pub arn: String,
    pub definition: Option<String>,
    pub role_arn: Option<String>,
    pub logging_configuration: Option<String>,
    pub tracing_configuration: Option<String>,
}

/// Parsed definitions by their text: executions of one state machine revision share one.
#[derive(Default)]
pub(crate) struct DefinitionCache {
    parsed: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Definition>>>,
}

/// How many distinct definitions the cache keeps before starting over.
const CACHED_DEFINITIONS: usize = 1024;

impl DefinitionCache {
    pub(crate) fn get(&self, text: &str) -> Result<std::sync::Arc<Definition>> {
        if let Some(def) = crate::lock::lock(&self.parsed).get(text).cloned() {
            return Ok(def);
        }
        let def = std::sync::Arc::new(parse_definition(text)?);
        {
            let mut m = crate::lock::lock(&self.parsed);
            if m.len() >= CACHED_DEFINITIONS {
                m.clear();
            }
            m.insert(text.to_owned(), def.clone());
        }
        Ok(def)
    }
}

/// Parses a definition, turning its diagnostics into AWS's `InvalidDefinition` message.
pub(crate) fn parse_definition(text: &str) -> Result<Definition> {
    Definition::parse(text)
        .map_err(|d| Error::InvalidDefinition(invalid_definition_message(text, &d)))
}

/// Parses a new definition and checks what its service integrations name against the
/// service models ([`definition_diagnostics`]), as AWS does when one is created or updated.
fn check_definition(text: &str) -> Result<Definition> {
    let definition = parse_definition(text)?;
    let diagnostics = definition_diagnostics(&definition);
    if !diagnostics.is_empty() {
        return Err(Error::InvalidDefinition(invalid_definition_message(
            text,
            &diagnostics,
        )));
    }
    Ok(definition)
}

/// What a parsed definition's service integrations name that their services do not have
/// (ERROR diagnostics of `ValidateStateMachineDefinition`, refused by `CreateStateMachine`).
pub fn definition_diagnostics(definition: &Definition) -> Vec<asl::definition::Diagnostic> {
    crate::integrations::aws_sdk::validate::diagnostics(definition)
}

impl Engine {
    /// Creates a state machine. Creating one that exists with the same settings is idempotent
    /// and returns the existing one, as AWS does.
    pub async fn create_state_machine(
        &self,
        req: CreateStateMachine,
    ) -> Result<StateMachineRecord> {
        arn::check_name(&req.name)?;
        arn::check_role(&req.role_arn)?;
        check_logging(req.logging_configuration.as_deref())?;
        let definition = check_definition(&req.definition)?;
        let kind = req.kind.unwrap_or(StateMachineType::Standard);
        if kind == StateMachineType::Express {
            let diagnostics = definition.express_diagnostics();
            if !diagnostics.is_empty() {
                return Err(Error::InvalidDefinition(invalid_definition_message(
                    &req.definition,
                    &diagnostics,
                )));
            }
        }
        let arn = arn::state_machine(&req.region, &req.account, &req.name);
        check_tag_count(&arn, &req.tags)?;
        let record = StateMachineRecord {
            arn: arn.clone(),
            name: req.name,
            kind,
            definition: req.definition,
            role_arn: req.role_arn,
            creation_date: self.now(),
            update_date: None,
            revision_id: None,
            description: None,
            logging_configuration: req.logging_configuration,
            tracing_configuration: req.tracing_configuration,
            tags: req.tags,
        };
        match self.store().create_state_machine(record.clone()).await {
            Ok(()) => Ok(record),
            Err(store::Error::AlreadyExists) => {
                let existing = self.store().get_state_machine(&arn).await?;
                match existing {
                    Some(e)
                        if e.definition == record.definition
                            && e.role_arn == record.role_arn
                            && e.kind == record.kind =>
                    {
                        Ok(e)
                    }
                    _ => Err(Error::StateMachineAlreadyExists(format!(
                        "State Machine Already Exists: '{arn}'"
                    ))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `DescribeStateMachine`: a state machine, or with a version ARN that version.
    pub async fn describe_state_machine(&self, arn_text: &str) -> Result<StateMachineRecord> {
        match arn::parse_qualified(arn_text)? {
            (_, arn::Qualifier::None) => self.unqualified_state_machine(arn_text).await,
            (a, arn::Qualifier::Version(_)) => self.describe_version(&a, arn_text).await,
            (_, arn::Qualifier::Alias(_)) => Err(not_found(arn_text)),
        }
    }

    /// A state machine by its unqualified ARN; a version or alias ARN names no state machine.
    pub(crate) async fn unqualified_state_machine(
        &self,
        arn_text: &str,
    ) -> Result<StateMachineRecord> {
        if arn::parse_qualified(arn_text)?.1 != arn::Qualifier::None {
            return Err(not_found(arn_text));
        }
        self.store()
            .get_state_machine(arn_text)
            .await?
            .ok_or_else(|| not_found(arn_text))
    }

    /// Updates a state machine and returns it with its new `revision_id` and `update_date`.
    pub async fn update_state_machine(
        &self,
        req: UpdateStateMachine,
    ) -> Result<StateMachineRecord> {
        let mut sm = self.unqualified_state_machine(&req.arn).await?;
        if req.definition.is_none()
            && req.role_arn.is_none()
            && req.logging_configuration.is_none()
            && req.tracing_configuration.is_none()
        {
            return Err(Error::MissingRequiredParameter(
                "Either the definition, the role ARN, the LoggingConfiguration, or the TracingConfiguration must be specified".into(),
            ));
        }
        check_logging(req.logging_configuration.as_deref())?;
        let before = sm.clone();
        if let Some(d) = req.definition {
            check_definition(&d)?;
            sm.definition = d;
        }
        if let Some(r) = req.role_arn {
            arn::check_role(&r)?;
            sm.role_arn = r;
        }
        if req.logging_configuration.is_some() {
            sm.logging_configuration = req.logging_configuration;
        }
        if req.tracing_configuration.is_some() {
            sm.tracing_configuration = req.tracing_configuration;
        }
        sm.update_date = Some(self.now());
        // An update that changes nothing keeps the revision (AWS: publishing it again returns
        // the same version).
        if sm.definition != before.definition
            || sm.role_arn != before.role_arn
            || sm.logging_configuration != before.logging_configuration
            || sm.tracing_configuration != before.tracing_configuration
        {
            sm.revision_id = Some(self.new_uuid());
        }
        self.store().update_state_machine(sm.clone()).await?;
        Ok(sm)
    }

    /// Deletes a state machine. Deleting one that does not exist succeeds, as on AWS.
    pub async fn delete_state_machine(&self, arn_text: &str) -> Result<()> {
        arn::parse_state_machine(arn_text)?;
        Ok(self.store().delete_state_machine(arn_text).await?)
    }

    /// The state machines of `account` in `region`, ordered by ARN.
    pub async fn list_state_machines(
        &self,
        region: &str,
        account: &str,
    ) -> Result<Vec<StateMachineRecord>> {
        let prefix = format!("arn:aws:states:{region}:{account}:");
        let all = self.store().list_state_machines().await?;
        Ok(all
            .into_iter()
            .filter(|sm| sm.arn.starts_with(&prefix))
            .collect())
    }

    /// TagResource on a state machine or an activity: adds `tags`, replacing the values of
    /// keys it already has.
    pub async fn tag_resource(&self, arn_text: &str, tags: Vec<(String, String)>) -> Result<()> {
        let mut resource = self.tagged(arn_text).await?;
        let current = resource.tags_mut();
        for (k, v) in tags {
            match current.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => current.push((k, v)),
            }
        }
        check_tag_count(arn_text, current)?;
        self.save_tags(resource).await
    }

    pub async fn untag_resource(&self, arn_text: &str, keys: &[String]) -> Result<()> {
        let mut resource = self.tagged(arn_text).await?;
        resource.tags_mut().retain(|(k, _)| !keys.contains(k));
        self.save_tags(resource).await
    }

    pub async fn list_tags(&self, arn_text: &str) -> Result<Vec<(String, String)>> {
        Ok(match self.tagged(arn_text).await? {
            Tagged::StateMachine(sm) => sm.tags,
            Tagged::Activity(a) => a.tags,
        })
    }

    /// The resource a tagging operation names: a state machine (not a version or alias) or
    /// an activity.
    async fn tagged(&self, arn_text: &str) -> Result<Tagged> {
        let not_found = || Error::resource_not_found(arn_text);
        let Some(a) = arn::Arn::parse(arn_text) else {
            return Err(Error::InvalidArn(format!("Invalid Arn: '{arn_text}'")));
        };
        match (a.resource_type.as_str(), a.parts.len()) {
            ("stateMachine", 1) => self
                .store()
                .get_state_machine(arn_text)
                .await?
                .map(Tagged::StateMachine)
                .ok_or_else(not_found),
            ("activity", 1) => self
                .store()
                .get_activity(arn_text)
                .await?
                .map(Tagged::Activity)
                .ok_or_else(not_found),
            _ => Err(not_found()),
        }
    }

    async fn save_tags(&self, resource: Tagged) -> Result<()> {
        match resource {
            Tagged::StateMachine(sm) => self.store().update_state_machine(sm).await?,
            Tagged::Activity(a) => self.store().update_activity(a).await?,
        }
        Ok(())
    }

    pub(crate) fn new_uuid(&self) -> String {
        asl::Entropy::new(rand::random()).uuid_v4()
    }
}

/// A resource the tagging operations act on.
enum Tagged {
    StateMachine(StateMachineRecord),
    Activity(store::ActivityRecord),
}

impl Tagged {
    fn tags_mut(&mut self) -> &mut Vec<(String, String)> {
        match self {
            Tagged::StateMachine(sm) => &mut sm.tags,
            Tagged::Activity(a) => &mut a.tags,
        }
    }
}

pub(crate) fn not_found(arn: &str) -> Error {
    Error::StateMachineDoesNotExist(format!("State Machine Does Not Exist: '{arn}'"))
}
