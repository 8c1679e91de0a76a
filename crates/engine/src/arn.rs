//! ARNs as AWS forms them, and the names inside them.

use crate::{Error, Result};

/// The parts of a Step Functions ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub region: String,
    pub account: String,
    /// `stateMachine`, `execution`, `express`, `activity`, `mapRun`, ...
    pub resource_type: String,
    /// The parts after the resource type.
    pub parts: Vec<String>,
}

impl Arn {
    pub fn parse(text: &str) -> Option<Arn> {
        let mut it = text.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("states"), Some(region), Some(account), Some(rest)) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        ) else {
            return None;
        };
        let mut parts = rest.split(':').map(str::to_owned);
        let resource_type = parts.next()?;
        let parts: Vec<String> = parts.collect();
        if parts.is_empty() || parts.iter().any(String::is_empty) {
            return None;
        }
        Some(Arn {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            resource_type,
            parts,
        })
    }
}

pub fn state_machine(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:states:{region}:{account}:stateMachine:{name}")
}

pub fn execution(sm: &Arn, name: &str) -> String {
    format!(
        "arn:{}:states:{}:{}:execution:{}:{}",
        sm.partition, sm.region, sm.account, sm.parts[0], name
    )
}

pub fn express_execution(sm: &Arn, name: &str, id: &str) -> String {
    format!(
        "arn:{}:states:{}:{}:express:{}:{}:{}",
        sm.partition, sm.region, sm.account, sm.parts[0], name, id
    )
}

/// Whether an execution ARN names an Express execution (`…:express:…`): the ARN is where an
/// execution's type is recorded.
pub fn is_express_execution(arn: &str) -> bool {
    Arn::parse(arn).is_some_and(|a| a.resource_type == "express")
}

/// The state machine an execution ARN belongs to.
pub fn state_machine_of_execution(exec: &Arn) -> String {
    format!(
        "arn:{}:states:{}:{}:stateMachine:{}",
        exec.partition, exec.region, exec.account, exec.parts[0]
    )
}

/// Parses a state machine ARN (no version or alias suffix), with AWS's `InvalidArn` message.
pub fn parse_state_machine(text: &str) -> Result<Arn> {
    parse_kind(text, |a| {
        a.resource_type == "stateMachine" && a.parts.len() == 1
    })
}

/// What follows a state machine ARN's name, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// `…:stateMachine:NAME`
    None,
    /// `…:stateMachine:NAME:N`
    Version(u64),
    /// `…:stateMachine:NAME:ALIAS` (alias names always hold a non-digit)
    Alias(String),
}

/// Parses a state machine ARN that may carry a version number or an alias name, with AWS's
/// `InvalidArn` message.
pub fn parse_qualified(text: &str) -> Result<(Arn, Qualifier)> {
    let a = parse_kind(text, |a| {
        a.resource_type == "stateMachine" && (1..=2).contains(&a.parts.len())
    })?;
    let q = match a.parts.get(1) {
        None => Qualifier::None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse() {
            Ok(n) => Qualifier::Version(n),
            Err(_) => return Err(Error::InvalidArn(format!("Invalid Arn: '{text}'"))),
        },
        Some(p) => Qualifier::Alias(p.clone()),
    };
    Ok((a, q))
}

/// The unqualified state machine ARN of a (possibly qualified) state machine ARN.
pub fn unqualified(sm: &Arn) -> String {
    format!(
        "arn:{}:states:{}:{}:stateMachine:{}",
        sm.partition, sm.region, sm.account, sm.parts[0]
    )
}

/// Parses an execution ARN (`execution` or `express`), with AWS's `InvalidArn` message.
pub fn parse_execution(text: &str) -> Result<Arn> {
    parse_kind(text, |a| {
        (a.resource_type == "execution" && a.parts.len() == 2)
            || (a.resource_type == "express" && a.parts.len() == 3)
    })
}

/// Parses a Map Run ARN (`…:mapRun:STATE_MACHINE/LABEL:ID`), with AWS's `InvalidArn` message.
pub fn parse_map_run(text: &str) -> Result<Arn> {
    parse_kind(text, |a| a.resource_type == "mapRun" && a.parts.len() == 2)
}

/// Parses an activity ARN, with AWS's `InvalidArn` message.
pub fn parse_activity(text: &str) -> Result<Arn> {
    parse_kind(text, |a| {
        a.resource_type == "activity" && a.parts.len() == 1
    })
}

fn parse_kind(text: &str, wanted: impl Fn(&Arn) -> bool) -> Result<Arn> {
    if !text.starts_with("arn:") {
        return Err(Error::InvalidArn(format!(
            "Invalid Arn: 'Invalid ARN prefix: {text}'"
        )));
    }
    match Arn::parse(text) {
        Some(a) if wanted(&a) => Ok(a),
        Some(a) => Err(Error::InvalidArn(format!(
            "Invalid Arn: 'Resource type not valid in this context: {}'",
            a.resource_type
        ))),
        None => Err(Error::InvalidArn(format!(
            "Invalid Arn: 'Invalid ARN: {text}'"
        ))),
    }
}

/// Checks that a role ARN is an ARN (AWS does not check that the role exists here).
pub fn check_role(text: &str) -> Result<()> {
    if text.starts_with("arn:") && text.split(':').count() >= 6 {
        Ok(())
    } else {
        Err(Error::InvalidArn(format!(
            "Invalid Arn: 'Invalid ARN prefix: {text}'"
        )))
    }
}

/// Checks a resource name against AWS's rules (1–80 characters; no whitespace, brackets,
/// wildcards, special or control characters).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.chars().count() > 80
        || name.chars().any(asl::resource_name::is_reserved)
    {
        return Err(Error::InvalidName(format!("Invalid Name: '{name}'")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "my-machine_1", "ünïcödé", &"x".repeat(80)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "a:b", "a\u{0}", "a*", &"x".repeat(81)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arns() {
        let sm = parse_state_machine("arn:aws:states:eu-west-1:1:stateMachine:M").unwrap();
        assert_eq!(
            execution(&sm, "e"),
            "arn:aws:states:eu-west-1:1:execution:M:e"
        );
        assert!(parse_state_machine("arn:aws:states:eu-west-1:1:execution:M:e").is_err());
        let (a, q) = parse_qualified("arn:aws:states:r:1:stateMachine:M:12").unwrap();
        assert_eq!(q, Qualifier::Version(12));
        assert_eq!(unqualified(&a), "arn:aws:states:r:1:stateMachine:M");
        let (_, q) = parse_qualified("arn:aws:states:r:1:stateMachine:M:PROD-1").unwrap();
        assert_eq!(q, Qualifier::Alias("PROD-1".into()));
        let (_, q) = parse_qualified("arn:aws:states:r:1:stateMachine:M").unwrap();
        assert_eq!(q, Qualifier::None);
        assert!(parse_qualified("arn:aws:states:r:1:stateMachine:M:1:2").is_err());
        let ex = parse_execution("arn:aws:states:r:1:execution:M:e").unwrap();
        assert_eq!(
            state_machine_of_execution(&ex),
            "arn:aws:states:r:1:stateMachine:M"
        );
        assert!(parse_execution("nope").is_err());
    }
}
