//! The closed vocabularies of stored records: execution, Map Run and state machine kinds and
//! statuses. Each is stored (and serialized) as AWS's own string, so records written before
//! these types existed read unchanged; a string outside the vocabulary is an error, never a
//! default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string that is not one of a vocabulary's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} {value:?}")]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub value: String,
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// AWS's string for it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<$name, UnknownWord> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownWord { vocabulary: $what, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

vocabulary! {
    /// An execution's status (`DescribeExecution.status`).
    ExecutionStatus ("execution status") {
        Running = "RUNNING",
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
        TimedOut = "TIMED_OUT",
        Aborted = "ABORTED",
        /// A Map Run child whose Map Run is being redriven and that will run again.
        PendingRedrive = "PENDING_REDRIVE",
    }
}

impl ExecutionStatus {
    /// Whether the execution has ended (it can end again after a redrive).
    pub fn is_closed(self) -> bool {
        !matches!(
            self,
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive
        )
    }
}

vocabulary! {
    /// A Map Run's status (`DescribeMapRun.status`).
    MapRunStatus ("Map Run status") {
        Running = "RUNNING",
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
        Aborted = "ABORTED",
    }
}

vocabulary! {
    /// A state machine's type (`CreateStateMachine.type`).
    StateMachineType ("state machine type") {
        Standard = "STANDARD",
        Express = "EXPRESS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_strangers_are_refused() {
        for s in ExecutionStatus::ALL {
            assert_eq!(s.as_str().parse::<ExecutionStatus>(), Ok(*s));
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<ExecutionStatus>(&json).unwrap(), *s);
        }
        for s in MapRunStatus::ALL {
            assert_eq!(s.as_str().parse::<MapRunStatus>(), Ok(*s));
        }
        for s in StateMachineType::ALL {
            assert_eq!(s.as_str().parse::<StateMachineType>(), Ok(*s));
        }
        let err = "running".parse::<ExecutionStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown execution status \"running\"");
        assert!(serde_json::from_str::<MapRunStatus>("\"TIMED_OUT\"").is_err());
        assert!(serde_json::from_str::<StateMachineType>("\"express\"").is_err());
    }
}
