//! State machine versions and aliases: publish, list, delete versions; create, describe,
//! update, list, delete aliases; and what an execution started through a qualified ARN runs.

use store::{AliasRecord, Route, StateMachineRecord, VersionRecord};

use crate::arn::{self, Qualifier};
use crate::machines::not_found;
use crate::{Engine, Error, Result};

/// What `CreateStateMachineAlias` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateAlias {
    pub name: String,
    pub description: Option<String>,
    pub routing: Vec<Route>,
}

/// What an execution runs: the state machine (with the definition, role and revision of the
/// version when started through a version or an alias) and the ARNs it was started through.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub machine: StateMachineRecord,
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
}

/// AWS's message for a missing alias.
fn alias_not_found(alias_arn: &str) -> Error {
    Error::ResourceNotFound {
        message: "Request references a resource that does not exist.".into(),
        resource_name: alias_arn.to_owned(),
    }
}

/// Picks the route a roll in `0..100` falls on: the first route takes rolls below its weight,
/// the second the rest.
pub(crate) fn pick_route(routes: &[Route], roll: u32) -> Option<&Route> {
    let mut below = 0;
    for r in routes {
        below += r.weight;
        if roll < below {
            return Some(r);
        }
    }
    routes.iter().rev().find(|r| r.weight > 0)
}

/// A version record seen as a state machine (`DescribeStateMachine` on a version ARN).
fn version_as_machine(v: &VersionRecord, name: &str) -> StateMachineRecord {
    StateMachineRecord {
        arn: v.arn.clone(),
        name: name.to_owned(),
        kind: v.kind,
        definition: v.definition.clone(),
        role_arn: v.role_arn.clone(),
        creation_date: v.creation_date,
        update_date: None,
        revision_id: v.revision_id.clone(),
        description: v.description.clone(),
        logging_configuration: v.logging_configuration.clone(),
        tracing_configuration: v.tracing_configuration.clone(),
        tags: Vec::new(),
    }
}

impl Engine {
    /// `PublishStateMachineVersion`. Publishing the revision the latest version was published
    /// from returns that version (AWS is idempotent here); `revision_id`, when given, must be
    /// the state machine's current revision.
    pub async fn publish_state_machine_version(
        &self,
        sm_arn: &str,
        revision_id: Option<String>,
        description: Option<String>,
    ) -> Result<VersionRecord> {
        let sm = self.unqualified_state_machine(sm_arn).await?;
        if let Some(wanted) = revision_id {
            let current = sm.revision_id.clone().unwrap_or_else(|| "null".into());
            if wanted != current {
                return Err(Error::Conflict(format!(
                    "Failed to publish the State Machine version for revision {wanted}. The current State Machine revision is {current}."
                )));
            }
        }
        self.publish_current(&sm, description).await
    }

    /// Publishes the state machine as it is now, unless its latest version already is that
    /// revision.
    pub(crate) async fn publish_current(
        &self,
        sm: &StateMachineRecord,
        description: Option<String>,
    ) -> Result<VersionRecord> {
        let versions = self.store().list_versions(&sm.arn).await?;
        if let Some(latest) = versions.first() {
            if latest.revision_id == sm.revision_id
                && latest.definition == sm.definition
                && latest.role_arn == sm.role_arn
            {
                return Ok(latest.clone());
            }
        }
        let version = VersionRecord {
            arn: String::new(),
            state_machine_arn: sm.arn.clone(),
            version: 0,
            kind: sm.kind,
            definition: sm.definition.clone(),
            role_arn: sm.role_arn.clone(),
            revision_id: sm.revision_id.clone(),
            description,
            creation_date: self.now(),
            logging_configuration: sm.logging_configuration.clone(),
            tracing_configuration: sm.tracing_configuration.clone(),
        };
        Ok(self.store().create_version(version).await?)
    }

    /// `ListStateMachineVersions`: newest first.
    pub async fn list_state_machine_versions(&self, sm_arn: &str) -> Result<Vec<VersionRecord>> {
        let sm = self.unqualified_state_machine(sm_arn).await?;
        Ok(self.store().list_versions(&sm.arn).await?)
    }

    /// `DeleteStateMachineVersion`. Deleting a version that does not exist succeeds; deleting
    /// one an alias routes to is a conflict.
    pub async fn delete_state_machine_version(&self, version_arn: &str) -> Result<()> {
        let (a, q) = arn::parse_qualified(version_arn)?;
        if !matches!(q, Qualifier::Version(_)) {
            return Err(Error::Validation(format!(
                "Invalid Arn: 'Expected a state machine version ARN: {version_arn}'"
            )));
        }
        let sm_arn = arn::unqualified(&a);
        let referencing: Vec<String> = self
            .store()
            .list_aliases(&sm_arn)
            .await?
            .into_iter()
            .filter(|al| al.routing.iter().any(|r| r.version_arn == version_arn))
            .map(|al| al.arn)
            .collect();
        if !referencing.is_empty() {
            return Err(Error::Conflict(format!(
                "Version to be deleted must not be referenced by an alias. Current list of aliases referencing this version: [{}]",
                referencing.join(", ")
            )));
        }
        Ok(self.store().delete_version(version_arn).await?)
    }

    /// A version as `DescribeStateMachine` shows it.
    pub(crate) async fn describe_version(
        &self,
        a: &arn::Arn,
        version_arn: &str,
    ) -> Result<StateMachineRecord> {
        let v = self
            .store()
            .get_version(version_arn)
            .await?
            .ok_or_else(|| not_found(version_arn))?;
        Ok(version_as_machine(&v, &a.parts[0]))
    }

    /// Checks a routing configuration (1 or 2 distinct versions of one state machine, weights
    /// summing to 100, every version published) and returns the state machine's ARN.
    async fn check_routing(&self, routing: &[Route]) -> Result<String> {
        let received = || {
            routing
                .iter()
                .map(|r| r.version_arn.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if routing.is_empty() || routing.len() > 2 {
            return Err(Error::InvalidRoutingConfiguration(
                "Routing configuration must contain 1 or 2 state machine versions.".into(),
            ));
        }
        let mut machines = Vec::new();
        for r in routing {
            let Ok((a, Qualifier::Version(_))) = arn::parse_qualified(&r.version_arn) else {
                return Err(Error::InvalidRoutingConfiguration(format!(
                    "Routing configuration must contain state machine version ARNs. Received: [{}]",
                    received()
                )));
            };
            machines.push(arn::unqualified(&a));
        }
        if machines.iter().any(|m| *m != machines[0]) {
            return Err(Error::InvalidRoutingConfiguration(format!(
                "Routing configuration must contain state machine version ARNs of the same state machine. Received: [{}]",
                received()
            )));
        }
        if routing.len() == 2 && routing[0].version_arn == routing[1].version_arn {
            return Err(Error::InvalidRoutingConfiguration(format!(
                "Routing configuration must contain distinct state machine version ARNs. Received: [{}]",
                received()
            )));
        }
        if routing.iter().map(|r| r.weight).sum::<u32>() != 100 {
            return Err(Error::InvalidRoutingConfiguration(
                "The sum of the weights in the routing configuration must be equal to 100.".into(),
            ));
        }
        for r in routing {
            if self.store().get_version(&r.version_arn).await?.is_none() {
                return Err(Error::resource_not_found(&r.version_arn));
            }
        }
        Ok(machines.swap_remove(0))
    }

    /// `CreateStateMachineAlias`. Creating an alias that exists with the same description and
    /// routing returns it (idempotent); with anything different it is a conflict.
    pub async fn create_state_machine_alias(&self, req: CreateAlias) -> Result<AliasRecord> {
        let sm_arn = self.check_routing(&req.routing).await?;
        let now = self.now();
        let alias = AliasRecord {
            arn: format!("{sm_arn}:{}", req.name),
            state_machine_arn: sm_arn,
            name: req.name,
            description: req.description,
            routing: req.routing,
            creation_date: now,
            update_date: now,
        };
        match self.store().create_alias(alias.clone()).await {
            Ok(()) => Ok(alias),
            Err(store::Error::AlreadyExists) => match self.store().get_alias(&alias.arn).await? {
                Some(e) if e.description == alias.description && e.routing == alias.routing => {
                    Ok(e)
                }
                _ => Err(Error::Conflict(
                    "Failed to create alias because an alias with the same name and a different routing configuration already exists.".into(),
                )),
            },
            Err(e) => Err(e.into()),
        }
    }

    pub async fn describe_state_machine_alias(&self, alias_arn: &str) -> Result<AliasRecord> {
        let (_, q) = arn::parse_qualified(alias_arn)?;
        if !matches!(q, Qualifier::Alias(_)) {
            return Err(alias_not_found(alias_arn));
        }
        self.store()
            .get_alias(alias_arn)
            .await?
            .ok_or_else(|| alias_not_found(alias_arn))
    }

    /// `UpdateStateMachineAlias`: a new description, a new routing configuration, or both.
    pub async fn update_state_machine_alias(
        &self,
        alias_arn: &str,
        description: Option<String>,
        routing: Option<Vec<Route>>,
    ) -> Result<AliasRecord> {
        if description.is_none() && routing.is_none() {
            return Err(Error::Validation(
                "Either the description or the RoutingConfiguration must be specified".into(),
            ));
        }
        let mut alias = self.describe_state_machine_alias(alias_arn).await?;
        if let Some(routing) = routing {
            let sm_arn = self.check_routing(&routing).await?;
            if sm_arn != alias.state_machine_arn {
                return Err(Error::InvalidRoutingConfiguration(format!(
                    "Routing configuration must contain state machine version ARNs of the alias's state machine: {}",
                    alias.state_machine_arn
                )));
            }
            alias.routing = routing;
        }
        if description.is_some() {
            alias.description = description;
        }
        alias.update_date = self.now();
        match self.store().update_alias(alias.clone()).await {
            Ok(()) => Ok(alias),
            Err(store::Error::NotFound) => Err(alias_not_found(alias_arn)),
            Err(e) => Err(e.into()),
        }
    }

    /// `DeleteStateMachineAlias`. Deleting an alias that does not exist succeeds.
    pub async fn delete_state_machine_alias(&self, alias_arn: &str) -> Result<()> {
        let (_, q) = arn::parse_qualified(alias_arn)?;
        if !matches!(q, Qualifier::Alias(_)) {
            return Err(Error::Validation(format!(
                "Invalid Arn: 'Expected a state machine alias ARN: {alias_arn}'"
            )));
        }
        Ok(self.store().delete_alias(alias_arn).await?)
    }

    /// `ListStateMachineAliases`: the aliases of a state machine, or with a version ARN the
    /// aliases that route to that version.
    pub async fn list_state_machine_aliases(&self, arn_text: &str) -> Result<Vec<AliasRecord>> {
        let (a, q) = arn::parse_qualified(arn_text)?;
        let sm_arn = arn::unqualified(&a);
        match q {
            Qualifier::None => {
                self.unqualified_state_machine(arn_text).await?;
                Ok(self.store().list_aliases(&sm_arn).await?)
            }
            Qualifier::Version(_) => {
                if self.store().get_version(arn_text).await?.is_none() {
                    return Err(not_found(arn_text));
                }
                let all = self.store().list_aliases(&sm_arn).await?;
                Ok(all
                    .into_iter()
                    .filter(|al| al.routing.iter().any(|r| r.version_arn == arn_text))
                    .collect())
            }
            Qualifier::Alias(_) => Err(Error::InvalidArn(format!(
                "Invalid Arn: 'Resource type not valid in this context: stateMachine alias: {arn_text}'"
            ))),
        }
    }

    /// What `StartExecution` on a state machine, version or alias ARN runs. An alias picks one
    /// of its versions by weight.
    pub(crate) async fn resolve_target(&self, arn_text: &str) -> Result<Target> {
        let (a, q) = arn::parse_qualified(arn_text)?;
        let sm_arn = arn::unqualified(&a);
        let sm = self
            .store()
            .get_state_machine(&sm_arn)
            .await?
            .ok_or_else(|| not_found(arn_text))?;
        let (version_arn, alias_arn) = match q {
            Qualifier::None => {
                return Ok(Target {
                    machine: sm,
                    version_arn: None,
                    alias_arn: None,
                })
            }
            Qualifier::Version(_) => (arn_text.to_owned(), None),
            Qualifier::Alias(_) => {
                let alias = self
                    .store()
                    .get_alias(arn_text)
                    .await?
                    .ok_or_else(|| not_found(arn_text))?;
                let roll = (self.inner.routing_roll)() % 100;
                let route = pick_route(&alias.routing, roll).ok_or_else(|| not_found(arn_text))?;
                (route.version_arn.clone(), Some(alias.arn))
            }
        };
        let v = self
            .store()
            .get_version(&version_arn)
            .await?
            .ok_or_else(|| not_found(&version_arn))?;
        let machine = StateMachineRecord {
            kind: v.kind,
            definition: v.definition,
            role_arn: v.role_arn,
            revision_id: v.revision_id,
            ..sm
        };
        Ok(Target {
            machine,
            version_arn: Some(version_arn),
            alias_arn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(v: &str, weight: u32) -> Route {
        Route {
            version_arn: v.into(),
            weight,
        }
    }

    #[test]
    fn routes_by_weight() {
        let routes = [route("a", 70), route("b", 30)];
        let picked = |roll| pick_route(&routes, roll).unwrap().version_arn.as_str();
        assert_eq!(picked(0), "a");
        assert_eq!(picked(69), "a");
        assert_eq!(picked(70), "b");
        assert_eq!(picked(99), "b");
        let counts = (0..100).filter(|r| picked(*r) == "a").count();
        assert_eq!(counts, 70);
        let all_b = [route("a", 0), route("b", 100)];
        assert!((0..100).all(|r| pick_route(&all_b, r).unwrap().version_arn == "b"));
        let single = [route("a", 100)];
        assert_eq!(pick_route(&single, 99).unwrap().version_arn, "a");
    }
}
