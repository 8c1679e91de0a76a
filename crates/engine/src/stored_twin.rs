//! How the engine's stored types are written: each is the durable twin of an interpreter type
//! ([`Twin`]), declared once with its field list by [`stored_struct!`] or [`stored_enum!`],
//! which write both conversions from that list. The checkpoint (`checkpoint/stored.rs`) and
//! the history events (`stored_event.rs`) are built from them.
//!
//! Writing happens on every transition, so a twin borrows from memory ([`Cow`] fields)
//! instead of copying; reading yields owned values that move into the interpreter's types.
//! The generated conversions destructure their source without `..` and match every variant:
//! a field or variant added to an interpreter type does not compile until it is added to
//! its twin's list.

use std::borrow::{Borrow, Cow};

/// The stored twin of an interpreter type.
pub(crate) trait Twin<'a>: Sized {
    /// The interpreter's type.
    type Memory: 'a;

    /// `memory` as stored, borrowing from it; the lanes of containers of more than `inline`
    /// lanes are left out (stored in rows of their own: see `checkpoint`).
    fn view(memory: &'a Self::Memory, inline: usize) -> Self;

    /// Back into the interpreter's type.
    fn load(self) -> Result<Self::Memory, LanesMissing>;
}

/// A stored container whose lanes are kept in rows that were not put back (only a
/// checkpoint has containers).
#[derive(Debug)]
pub(crate) struct LanesMissing;

/// Text, JSON values, lists and maps: borrowed when written, owned when read.
impl<'a, B: ToOwned + ?Sized + 'a> Twin<'a> for Cow<'a, B>
where
    B::Owned: 'a,
{
    type Memory = B::Owned;

    fn view(memory: &'a B::Owned, _: usize) -> Self {
        Cow::Borrowed(memory.borrow())
    }

    fn load(self) -> Result<B::Owned, LanesMissing> {
        Ok(self.into_owned())
    }
}

impl<'a, T: Twin<'a>> Twin<'a> for Option<T> {
    type Memory = Option<T::Memory>;

    fn view(memory: &'a Option<T::Memory>, inline: usize) -> Self {
        memory.as_ref().map(|m| T::view(m, inline))
    }

    fn load(self) -> Result<Option<T::Memory>, LanesMissing> {
        self.map(T::load).transpose()
    }
}

impl<'a, T: Twin<'a>> Twin<'a> for Box<T> {
    type Memory = Box<T::Memory>;

    fn view(memory: &'a Box<T::Memory>, inline: usize) -> Self {
        Box::new(T::view(memory, inline))
    }

    fn load(self) -> Result<Box<T::Memory>, LanesMissing> {
        (*self).load().map(Box::new)
    }
}

/// Numbers and flags are stored as they are.
macro_rules! copied {
    ($($t:ty),+) => {
        $(impl Twin<'_> for $t {
            type Memory = $t;

            fn view(memory: &$t, _: usize) -> $t {
                *memory
            }

            fn load(self) -> Result<$t, LanesMissing> {
                Ok(self)
            }
        })+
    };
}
copied!(bool, u32, u64, i64, f64);

/// Declares the stored twin of the interpreter's struct `$memory` and writes both
/// conversions ([`Twin`]) from the one field list, each field converted by its own twin:
///
/// ```ignore
/// stored_struct! {
///     /// [`TaskRef`] as stored.
///     TaskRef => struct StoredTaskRef<'a> {
///         family: StoredTaskFamily,
///         resource: Cow<'a, str>,
///         #[serde(default, skip_serializing_if = "Option::is_none")]
///         resource_type: Option<Cow<'a, str>>,
///     }
/// }
/// ```
///
/// The list names every field of `$memory`, and the serde shape is the list's: its order,
/// names and attributes. A borrowing twin's lifetime is `'a`.
macro_rules! stored_struct {
    (
        $(#[$attr:meta])*
        $memory:ident => $vis:vis struct $stored:ident $(<$lt:lifetime>)? {
            $( $(#[$fattr:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        #[derive(serde::Serialize, serde::Deserialize)]
        $(#[$attr])*
        $vis struct $stored $(<$lt>)? {
            $( $(#[$fattr])* $vis $field: $ty, )*
        }

        impl<'a> $crate::stored_twin::Twin<'a> for $stored $(<$lt>)? {
            type Memory = $memory;

            fn view(memory: &'a $memory, inline: usize) -> Self {
                let $memory { $($field),* } = memory;
                $stored {
                    $( $field: <$ty as $crate::stored_twin::Twin<'a>>::view($field, inline), )*
                }
            }

            fn load(self) -> Result<$memory, $crate::stored_twin::LanesMissing> {
                let $stored { $($field),* } = self;
                Ok($memory {
                    $( $field: <$ty as $crate::stored_twin::Twin<'a>>::load($field)?, )*
                })
            }
        }
    };
}
pub(crate) use stored_struct;

/// Declares the stored twin of the interpreter's enum `$memory`, as [`stored_struct!`] does
/// for a struct. A variant is a unit, a struct with a field list, or a tuple of one field,
/// named for the conversions: `Failed(error: StoredFailure<'a>)` declares
/// `Failed(StoredFailure<'a>)`.
macro_rules! stored_enum {
    (
        $(#[$attr:meta])*
        $memory:ident => $vis:vis enum $stored:ident $(<$lt:lifetime>)? {
            $(
                $(#[$vattr:meta])*
                $variant:ident
                $( ( $one:ident : $one_ty:ty ) )?
                $( { $( $(#[$fattr:meta])* $field:ident : $ty:ty ),* $(,)? } )?
            ),* $(,)?
        }
    ) => {
        #[derive(serde::Serialize, serde::Deserialize)]
        $(#[$attr])*
        $vis enum $stored $(<$lt>)? {
            $(
                $(#[$vattr])*
                $variant
                $( ($one_ty) )?
                $( { $( $(#[$fattr])* $field: $ty, )* } )?,
            )*
        }

        impl<'a> $crate::stored_twin::Twin<'a> for $stored $(<$lt>)? {
            type Memory = $memory;

            #[allow(unused_variables)] // `inline`, in an enum whose variants hold no twins
            fn view(memory: &'a $memory, inline: usize) -> Self {
                match memory {
                    $(
                        $memory::$variant $( ($one) )? $( { $($field),* } )? => $stored::$variant
                        $( (<$one_ty as $crate::stored_twin::Twin<'a>>::view($one, inline)) )?
                        $( {
                            $(
                                $field:
                                    <$ty as $crate::stored_twin::Twin<'a>>::view($field, inline),
                            )*
                        } )?,
                    )*
                }
            }

            fn load(self) -> Result<$memory, $crate::stored_twin::LanesMissing> {
                Ok(match self {
                    $(
                        $stored::$variant $( ($one) )? $( { $($field),* } )? => $memory::$variant
                        $( (<$one_ty as $crate::stored_twin::Twin<'a>>::load($one)?) )?
                        $( {
                            $( $field: <$ty as $crate::stored_twin::Twin<'a>>::load($field)?, )*
                        } )?,
                    )*
                })
            }
        }
    };
}
pub(crate) use stored_enum;
